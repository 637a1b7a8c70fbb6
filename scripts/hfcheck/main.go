// Command hfcheck writes what clipline computes for the first rows of a
// decoded, tokenized stream (the inputs and both towers' raw projections) to a
// safetensors file, so scripts/hfcheck/check.py can load the same checkpoint in
// transformers (and its adapter in peft) and compare:
//
//	go run ./scripts/hfcheck --model DIR --in data/scenes.pix.arrow --rows 8 --out ref.safetensors
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/model"
	"github.com/clipline/clipline/internal/safetensors"
	"github.com/clipline/clipline/internal/stream"
)

func main() {
	dir := flag.String("model", "", "checkpoint directory")
	in := flag.String("in", "", "stream with pixels and caption_tokens")
	rows := flag.Int("rows", 8, "rows to use (first caption of each)")
	out := flag.String("out", "ref.safetensors", "output file")
	flag.Parse()
	if err := run(*dir, *in, *rows, *out); err != nil {
		fmt.Fprintln(os.Stderr, "hfcheck:", err)
		os.Exit(1)
	}
}

func run(dir, in string, n int, out string) error {
	be := cpu.New()
	m, err := model.Load(dir, be)
	if err != nil {
		return err
	}
	pre, err := imageproc.LoadConfig(dir)
	if err != nil {
		return err
	}
	r, err := stream.Open(in)
	if err != nil {
		return err
	}
	defer r.Close()
	if !r.Next() {
		return fmt.Errorf("%s: no batch: %v", in, r.Err())
	}
	px, err := stream.Pixels(r.Batch())
	if err != nil {
		return err
	}
	tok, err := stream.CaptionTokens(r.Batch())
	if err != nil {
		return err
	}
	n = min(n, px.Rows())
	S := m.Config().Vision.ImageSize
	T := tok.Width
	pixels := make([]float32, n*3*S*S)
	ids := make([]int32, n*T)
	for i := range n {
		pre.Normalize(pixels[i*3*S*S:(i+1)*3*S*S], px.Row(i))
		copy(ids[i*T:], tok.Item(i, 0))
	}
	D := m.Config().ProjectionDim
	img, err := m.VisionForward(m.NewVisionPlan(n, false), pixels, n)
	if err != nil {
		return err
	}
	imgEmb := make([]float32, n*D)
	be.Download(imgEmb, img)
	txt, err := m.TextForward(m.NewTextPlan(n, false), ids, n)
	if err != nil {
		return err
	}
	txtEmb := make([]float32, n*D)
	be.Download(txtEmb, txt)
	idsF := make([]float32, len(ids)) // ids < 2^24: exact in float32
	for i, v := range ids {
		idsF[i] = float32(v)
	}
	return safetensors.Save(out, map[string]safetensors.Tensor{
		"pixel_values": safetensors.F32([]int{n, 3, S, S}, pixels),
		"input_ids":    safetensors.F32([]int{n, T}, idsF),
		"image_embeds": safetensors.F32([]int{n, D}, imgEmb),
		"text_embeds":  safetensors.F32([]int{n, D}, txtEmb),
	}, nil)
}
