// Command clbench measures clipline's LoRA training and image embedding
// throughput on a device, for scripts/gpu/run.sh (which runs the same
// measurement with PyTorch on the same weights and merges the two).
//
//	clbench train --model DIR --device cuda,bf16 --batch 128 --steps 20 --out train.json
//	clbench embed --model DIR --device cuda,bf16 --batch 256 --batches 20 --out embed.json
//	clbench save  --model DIR     # random ViT-B/32 weights (when transformers cannot make them)
//
// A training step is what internal/train does for one batch: forward both
// towers, InfoNCE on the host, backward, global-norm clipping and AdamW over
// the LoRA parameters. Inputs are random (image bytes, token ids with the
// end-of-text token at --eot-min..--eot-max; 76 = full 77-token context, the
// same work PyTorch does on max_length-padded captions). Images are uint8 as
// decode writes them and are normalised on the device, as in train and
// embed; PyTorch's side gets float32 pixel_values from pinned memory, as
// CLIPImageProcessor hands them over.
//
// It builds without the cuda tag too (then only --device cpu works), so it is
// checked by the ordinary build and can be smoke-tested on a CPU.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/backend/cuda"
	"github.com/clipline/clipline/internal/device"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/loss"
	"github.com/clipline/clipline/internal/model"
	"github.com/clipline/clipline/internal/optim"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "train" && os.Args[1] != "embed" && os.Args[1] != "save") {
		fmt.Fprintln(os.Stderr, "usage: clbench train|embed|save --model DIR [--device D] [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	dir := fs.String("model", "", "Hugging Face CLIP checkpoint directory")
	dev := fs.String("device", "cuda,bf16", "device ("+device.Syntax+")")
	batch := fs.Int("batch", 128, "batch size (pairs or images)")
	steps := fs.Int("steps", 20, "timed training steps")
	batches := fs.Int("batches", 20, "timed embedding batches")
	warmup := fs.Int("warmup", 3, "untimed warm-up steps or batches")
	r := fs.Int("lora-r", 16, "LoRA rank")
	alpha := fs.Float64("lora-alpha", 32, "LoRA alpha")
	dropout := fs.Float64("lora-dropout", 0.05, "LoRA dropout")
	targets := fs.String("lora-targets", strings.Join(model.DefaultLoRATargets, ","), "LoRA target modules")
	eotMin := fs.Int("eot-min", 76, "smallest end-of-text position")
	eotMax := fs.Int("eot-max", 76, "largest end-of-text position")
	out := fs.String("out", "", "write the figures as JSON here (default stdout)")
	label := fs.String("label", "clipline", "name of this measurement in the JSON")
	chunk := fs.Int("gradcache", 0, "GradCache chunk size (0: plain batch): activations for one chunk only")
	recompute := fs.Bool("recompute-mlp", false, "recompute MLP activations in the backward (less memory)")
	fs.Parse(os.Args[2:])
	if *dir == "" {
		fail(fmt.Errorf("--model is required"))
	}
	if mode == "save" {
		// Random ViT-B/32 weights in Hugging Face layout, for machines
		// where transformers cannot write them (bench_torch.py save).
		m, err := model.New(model.ViTB32Config(), cpu.New(), 0)
		if err == nil {
			err = m.Save(*dir)
		}
		if err != nil {
			fail(err)
		}
		return
	}
	be, err := device.Open(*dev)
	if err != nil {
		fail(err)
	}
	res := map[string]any{"label": *label, "device": be.Name(), "batch": *batch, "go": runtime.Version()}
	if g, ok := be.(interface{ DeviceName() string }); ok {
		res["gpu"] = g.DeviceName()
	}
	if f, ok := be.(interface{ FusedBias() (bool, string) }); ok {
		_, res["fused_bias"] = f.FusedBias()
	}
	if c, ok := be.(interface{ CublasLibrary() (string, int) }); ok {
		p, v := c.CublasLibrary()
		res["cublas"], res["cublas_version"] = p, v
	}
	t0 := time.Now()
	m, err := model.Load(*dir, be)
	if err != nil {
		fail(err)
	}
	res["load_seconds"] = time.Since(t0).Seconds()
	m.RecomputeMLP(*recompute)
	if mode == "train" {
		res["recompute_mlp"] = *recompute
		err = benchTrain(be, m, res, *batch, *chunk, *warmup, *steps, *eotMin, *eotMax, model.LoRAConfig{
			R: *r, Alpha: float32(*alpha), Dropout: float32(*dropout), Targets: strings.Split(*targets, ","), Seed: 1})
	} else {
		err = benchEmbed(be, m, res, *batch, *warmup, *batches)
	}
	if err != nil {
		fail(err)
	}
	memory(be, res)
	if f, ok := be.(interface{ FusedBias() (bool, string) }); ok {
		_, res["fused_bias_after"] = f.FusedBias()
	}
	if err := device.Close(be); err != nil {
		fail(err)
	}
	js, _ := json.MarshalIndent(res, "", "  ")
	if *out == "" {
		fmt.Println(string(js))
	} else if err := os.WriteFile(*out, append(js, '\n'), 0o644); err != nil {
		fail(err)
	}
	fmt.Fprintf(os.Stderr, "clbench %s: %s\n", mode, js)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "clbench:", err)
	os.Exit(1)
}

// memory adds the backend's memory figures: the pool's peaks (comparable to
// torch.cuda.max_memory_allocated / max_memory_reserved) and the device's
// used memory (all processes, driver and cuBLAS workspace included).
func memory(be backend.Backend, res map[string]any) {
	if s, ok := be.(interface{ MemStats() cuda.MemStats }); ok {
		st := s.MemStats()
		res["peak_allocated_bytes"] = st.PeakInUse
		res["peak_reserved_bytes"] = st.PeakReserved
		res["cu_mem_allocs"] = st.Allocs
	}
	if d, ok := be.(interface {
		DeviceMemory() (int64, int64, error)
	}); ok {
		if free, total, err := d.DeviceMemory(); err == nil {
			res["device_used_bytes"] = total - free
			res["device_total_bytes"] = total
		}
	}
}

// randomInputs makes n random images as decode writes them (uint8 HWC RGB,
// normalised on the device as train and embed do) and n token rows.
func randomInputs(rng *rand.Rand, cfg model.Config, n, eotMin, eotMax int) ([]uint8, []int32) {
	S, T, V := cfg.Vision.ImageSize, cfg.Text.MaxPositionEmbeddings, cfg.Text.VocabSize
	pix := make([]uint8, n*S*S*3)
	for i := range pix {
		pix[i] = uint8(rng.IntN(256))
	}
	ids := make([]int32, n*T)
	for b := range n {
		eot := min(T-1, eotMin+rng.IntN(max(1, eotMax-eotMin+1)))
		ids[b*T] = int32(V - 2)
		for i := 1; i < eot; i++ {
			ids[b*T+i] = int32(rng.IntN(V - 2))
		}
		ids[b*T+eot] = int32(V - 1) // the largest id: CLIP pools here
	}
	return pix, ids
}

// pinnedCopy copies images into page-locked memory where the backend has
// it, as train and embed hold their image buffers (never freed: the
// process ends with the benchmark).
func pinnedCopy(be backend.Backend, pix []uint8) []uint8 {
	h := backend.HostBytes(be, len(pix))
	copy(h, pix)
	return h
}

func benchTrain(be backend.Backend, m *model.Model, res map[string]any, B, chunk, warmup, steps, eotMin, eotMax int, lc model.LoRAConfig) error {
	if err := m.ApplyLoRA(lc); err != nil {
		return err
	}
	total, trainable := m.NumParams()
	res["params"], res["trainable_params"] = total, trainable
	res["lora"] = lc
	cfg := m.Config()
	D := cfg.ProjectionDim
	if chunk <= 0 || chunk > B {
		chunk = B
	}
	res["gradcache_chunk"] = chunk
	vp, tp := m.NewVisionPlan(chunk, true), m.NewTextPlan(chunk, true)
	m.ZeroGrads()
	var params []optim.Param
	for _, p := range m.Params() {
		if p.Trainable {
			params = append(params, optim.Param{Name: p.Name, W: p.W, G: p.G, Decay: p.Decay})
		}
	}
	opt, err := optim.NewAdamW(be, params, 0.01)
	if err != nil {
		return err
	}
	ts, err := m.NewTrainStep(vp, tp)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// A few distinct batches, cycled, so input generation stays off the clock.
	const nIn = 4
	var pixs [nIn][]uint8
	var idss [nIn][]int32
	for i := range nIn {
		var pix []uint8
		pix, idss[i] = randomInputs(rng, cfg, B, eotMin, eotMax)
		pixs[i] = pinnedCopy(be, pix)
	}
	var losses []float32
	S, T := cfg.Vision.ImageSize, cfg.Text.MaxPositionEmbeddings
	norm := imageproc.DefaultConfig(S).LUT()
	step := func(s int) error {
		m.ZeroGrads()
		l, err := ts.Run(&model.Batch{N: B,
			Tokens: func(lo, hi int) []int32 { return idss[s%nIn][lo*T : hi*T] },
			Images: func(lo, hi int) []uint8 { return pixs[s%nIn][lo*3*S*S : hi*3*S*S] },
			Norm:   &norm,
			// Seeds that depend on the step and the chunk only, so
			// GradCache's second pass sees the same masks.
			Dropout: func(lo int) (uint64, uint64) { return uint64(4*s+1)<<20 | uint64(lo), uint64(4*s+2)<<20 | uint64(lo) },
			Loss: func(img, txt []float32, n int) (loss.Result, error) {
				return loss.InfoNCE(img, txt, n, D, loss.Options{Temperature: 0.05})
			},
		})
		if err != nil {
			return err
		}
		optim.ClipGradNorm(be, params, 1.0)
		opt.Step(1e-4)
		losses = append(losses, l.Loss)
		return nil
	}
	for s := range warmup {
		if err := step(s); err != nil {
			return err
		}
	}
	if err := be.Sync(); err != nil {
		return err
	}
	done := profileStart(be, res, steps)
	t0 := time.Now()
	for s := warmup; s < warmup+steps; s++ {
		if err := step(s); err != nil {
			return err
		}
	}
	if err := be.Sync(); err != nil {
		return err
	}
	el := time.Since(t0).Seconds()
	done()
	res["steps"], res["seconds"] = steps, el
	res["step_ms"] = 1000 * el / float64(steps)
	res["pairs_per_s"] = float64(B*steps) / el
	res["loss_first"], res["loss_last"] = losses[0], losses[len(losses)-1]
	res["eot_range"] = []int{eotMin, eotMax}
	return nil
}

func benchEmbed(be backend.Backend, m *model.Model, res map[string]any, B, warmup, batches int) error {
	cfg := m.Config()
	vp := m.NewVisionPlan(B, false)
	rng := rand.New(rand.NewPCG(3, 4))
	pix, _ := randomInputs(rng, cfg, B, 1, 1)
	pix = pinnedCopy(be, pix)
	norm := imageproc.DefaultConfig(cfg.Vision.ImageSize).LUT()
	host := make([]float32, B*cfg.ProjectionDim)
	run := func() error {
		e, err := m.VisionForwardImages(vp, pix, &norm, B)
		if err != nil {
			return err
		}
		be.Download(host, e) // as embed does: every batch comes back to the host
		return nil
	}
	for range warmup {
		if err := run(); err != nil {
			return err
		}
	}
	if err := be.Sync(); err != nil {
		return err
	}
	done := profileStart(be, res, batches)
	t0 := time.Now()
	for range batches {
		if err := run(); err != nil {
			return err
		}
	}
	el := time.Since(t0).Seconds()
	if err := be.Sync(); err != nil {
		return err
	}
	done()
	res["batches"], res["seconds"] = batches, el
	res["images_per_s"] = float64(B*batches) / el
	return nil
}

// profiled is the CUDA backend's profiling (internal/backend/cuda/profile.go).
type profiled interface {
	ResetProfile()
	HostSyncs() int64
	Profiling() bool
	Profile() ([]cuda.ProfileEntry, error)
}

// profileStart starts counting host syncs and, when the backend profiles
// (CLIPLINE_CUDA_PROFILE=1), its per-op times; the function it returns,
// called after the timed iterations, records host_syncs_per_iter and the
// profile (per iteration) in res and prints the profile's table.
func profileStart(be backend.Backend, res map[string]any, iters int) func() {
	cb, ok := be.(profiled)
	if !ok {
		return func() {}
	}
	cb.ResetProfile()
	s0 := cb.HostSyncs()
	return func() {
		res["host_syncs_per_iter"] = float64(cb.HostSyncs()-s0) / float64(max(iters, 1))
		if !cb.Profiling() {
			return
		}
		prof, err := cb.Profile()
		if err != nil {
			res["profile_error"] = err.Error()
		}
		per := make([]map[string]any, 0, len(prof))
		for _, e := range prof {
			n := float64(max(iters, 1))
			per = append(per, map[string]any{"op": e.Op, "calls_per_iter": float64(e.Calls) / n,
				"gpu_ms_per_iter": e.GPUms / n, "host_ms_per_iter": e.HostMS / n})
		}
		res["profile"] = per
		fmt.Fprintf(os.Stderr, "clbench profile (%s, %v, per iteration of %d; %.1f host syncs per iteration):\n%s",
			res["label"], res["device"], iters, res["host_syncs_per_iter"], cuda.FormatProfile(prof, iters))
	}
}
