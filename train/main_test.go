package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/model"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/stream/streamtest"
)

// writeInput writes a stream of n images (train and val rows) with pixels
// and tokens for the tiny model.
func writeInput(t *testing.T, path string, n int) { writeInputSide(t, path, n, 32) }

// writeInputSide is writeInput with side x side pixels.
func writeInputSide(t *testing.T, path string, n, side int) { writeInputBatches(t, path, n, side, 0) }

// writeInputBatches is writeInputSide in record batches of batchRows rows
// (0: the writer's default).
func writeInputBatches(t *testing.T, path string, n, side, batchRows int) {
	t.Helper()
	const ctx = 8
	r := rand.New(rand.NewPCG(1, 2))
	var ids, splits []string
	var caps [][]string
	toks := stream.Tokens{Width: ctx, Offsets: []int32{0}}
	pix := stream.PixelRows{Width: side * side * 3}
	for i := 0; i < n; i++ {
		ids = append(ids, string(rune('a'+i)))
		split := "train"
		if i%4 == 3 {
			split = "val"
		}
		splits = append(splits, split)
		caps = append(caps, []string{"one " + ids[i], "two " + ids[i]})
		for j := 0; j < 2; j++ {
			tk := make([]int32, ctx)
			tk[0], tk[1], tk[2], tk[3] = 500, int32(1+i), int32(100+j), 511
			toks.Values = append(toks.Values, tk...)
		}
		toks.Offsets = append(toks.Offsets, int32(2*(i+1)))
		for k := 0; k < side*side*3; k++ {
			pix.Values = append(pix.Values, byte(r.IntN(256)))
		}
	}
	schema := arrow.NewSchema([]arrow.Field{stream.ImageIDField(), stream.SplitField(), stream.CaptionsField(),
		stream.CaptionTokensField(ctx), stream.PixelsField(side)}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{stream.NewStrings(ids), stream.NewStrings(splits),
		stream.NewStringLists(caps), stream.NewCaptionTokens(toks), stream.NewPixels(pix)}, int64(n))
	defer rec.Release()
	streamtest.WriteFile(t, path, schema, stream.Options{BatchRows: batchRows}, rec)
}

// tinyRun saves a tiny random base model and an input of 8 images (12
// training pairs) under dir.
func tinyRun(t *testing.T, dir string) (base, in string) {
	t.Helper()
	base = filepath.Join(dir, "base")
	m, err := model.New(model.TinyConfig(), cpu.New(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(base); err != nil {
		t.Fatal(err)
	}
	in = filepath.Join(dir, "in.arrow")
	writeInput(t, in, 8)
	return base, in
}

func TestTrainCLI(t *testing.T) {
	dir := t.TempDir()
	base, in := tinyRun(t, dir)
	cfg := filepath.Join(dir, "cfg.yaml")
	os.WriteFile(cfg, []byte("output_dir: "+filepath.Join(dir, "from-file")+"\nepochs: 5\nbatch_size: 4\nlora_r: 2\nlearning_rate: 1e-3\nno_such_key: 1\n"), 0o644)
	out := filepath.Join(dir, "out")
	var so, se bytes.Buffer
	err := run([]string{"--model", base, "--config", cfg, "--set", "epochs=2", "--set", "logging_steps=1",
		"--out", out, "--in", in}, &so, &se)
	if err != nil {
		t.Fatalf("%v\n%s", err, se.String())
	}
	log := se.String()
	for _, want := range []string{`unknown key "no_such_key"`, "train: step 6/6", "validation at step 3", "t2i", "final model in"} {
		if !strings.Contains(log, want) {
			t.Errorf("stderr lacks %q:\n%s", want, log)
		}
	}
	if so.Len() != 0 {
		t.Errorf("stdout not empty: %q", so.String())
	}
	for _, p := range []string{"checkpoint-3/model.safetensors", "checkpoint-6/adapter/adapter_model.safetensors", "final/config.json", "best/config.json", "metrics.jsonl"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Errorf("missing %s", p)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "from-file")); err == nil {
		t.Error("--out did not override output_dir from the file")
	}

	// --print-config shows the merged configuration.
	so.Reset()
	if err := run([]string{"--model", base, "--config", cfg, "--set", "batch_size=16", "--print-config"}, &so, &se); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(so.String(), "batch_size: 16") || !strings.Contains(so.String(), "epochs: 5") {
		t.Errorf("print-config:\n%s", so.String())
	}

	// Errors: a bad value, an unknown device, a missing split.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", base, "--in", in, "--set", "batch_size=x"}, `bad value "x" for batch_size`},
		{[]string{"--model", base, "--in", in, "--device", "tpu"}, `config: flag --device: bad value "tpu" for device: unknown device "tpu"`},
		{[]string{"--model", base, "--in", in, "--train-split", "nope", "--out", filepath.Join(dir, "nope")}, `no (caption, image) pairs in split "nope"`},
	} {
		err := run(tc.args, &so, &se)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want %q, got %v", tc.args, tc.want, err)
		}
	}
}

// TestMRLDimsNameTheFile: the shipped example's mrl_dims cannot work with
// the bundled base model; the error names the file and line of the value
// and the model's projection dim.
func TestMRLDimsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.arrow")
	writeInputSide(t, in, 8, 64) // testdata/base-model's image size
	example := filepath.Join("..", "examples", "clip_text_to_image.yaml")
	raw, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "mrl_dims:") {
			line = i + 1
		}
	}
	var so, se bytes.Buffer
	err = run([]string{"--model", filepath.Join("..", "testdata", "base-model"), "--config", example, "--set", "use_mrl=true",
		"--out", filepath.Join(dir, "out"), "--in", in}, &so, &se)
	abs, _ := filepath.Abs(example) // kong's existingfile makes the path absolute
	want := fmt.Sprintf(`config: %s:%d: bad value "[512, 256, 128]" for mrl_dims: dimension 512 exceeds the model's projection_dim 128`, abs, line)
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s\n%s", err, want, se.String())
	}
}
