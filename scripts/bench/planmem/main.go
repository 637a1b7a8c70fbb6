// Command planmem prints how much backend memory a LoRA training run holds
// for a model configuration and batch size: weights, the training plans of
// both towers, the workspace they share, gradients and optimizer moments.
// It counts the allocations of the model code on a CPU backend (no forward
// runs). The CPU backend's attention keeps its probabilities (B·heads·T²
// per layer) where the CUDA backend keeps two values per row, and the CUDA
// backend adds bf16 weight copies and scratch of its own, so the figures
// differ from a GPU's by those.
//
//	go run ./scripts/bench/planmem --config vit-b-32 --batch 128
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/model"
)

// counting is a CPU backend that counts the bytes held through it.
type counting struct {
	*cpu.Backend
	bytes int64
	bf16  bool
}

// BF16Activations lets --bf16 plan as for a bf16 GPU backend.
func (c *counting) BF16Activations() bool { return c.bf16 }

func (c *counting) Alloc(n int) backend.Buf {
	c.bytes += 4 * int64(n)
	return c.Backend.Alloc(n)
}

// Free subtracts a buffer the model gives back (it frees only whole
// buffers, never views), so the count is what is held.
func (c *counting) Free(b backend.Buf) { c.bytes -= 4 * int64(b.Len()) }

func (c *counting) AllocInt(n int) backend.IntBuf {
	c.bytes += 4 * int64(n)
	return c.Backend.AllocInt(n)
}

func (c *counting) AllocBytes(n int) backend.ByteBuf {
	c.bytes += int64(n)
	return c.Backend.AllocBytes(n)
}

func main() {
	name := flag.String("config", "vit-b-32", "model: vit-b-32, vit-b-16, vit-l-14")
	batch := flag.Int("batch", 128, "pairs per step")
	r := flag.Int("lora-r", 16, "LoRA rank (0: full fine-tuning)")
	recompute := flag.Bool("recompute-mlp", false, "recompute MLP activations in the backward")
	bf16 := flag.Bool("bf16", false, "as on a backend computing in bf16 (MLP activations kept packed)")
	flag.Parse()
	configs := map[string]func() model.Config{
		"vit-b-32": model.ViTB32Config, "vit-b-16": model.ViTB16Config,
		"vit-l-14": func() model.Config { return model.ViTL14Config(224) },
	}
	cfgOf, ok := configs[strings.ToLower(*name)]
	if !ok {
		fmt.Fprintf(os.Stderr, "planmem: unknown --config %q\n", *name)
		os.Exit(2)
	}
	be := &counting{Backend: cpu.New(), bf16: *bf16}
	m, err := model.New(cfgOf(), be, 1)
	if err != nil {
		fmt.Fprintln(os.Stderr, "planmem:", err)
		os.Exit(1)
	}
	mark := func() func() float64 {
		at := be.bytes
		return func() float64 { return float64(be.bytes-at) / (1 << 20) }
	}
	weights := float64(be.bytes) / (1 << 20)
	lora := mark()
	if *r > 0 {
		if err := m.ApplyLoRA(model.LoRAConfig{R: *r, Alpha: float32(2 * *r), Dropout: 0.05, Targets: model.DefaultLoRATargets, Seed: 1}); err != nil {
			fmt.Fprintln(os.Stderr, "planmem:", err)
			os.Exit(1)
		}
	}
	adapters := lora()
	m.RecomputeMLP(*recompute)
	plans := mark()
	vp, tp := m.NewVisionPlan(*batch, true), m.NewTextPlan(*batch, true)
	vp.SetDropout(true, 1)
	tp.SetDropout(true, 2)
	planMiB := plans()
	grads := mark()
	m.ZeroGrads()
	gradMiB := grads()
	_, trainable := m.NumParams()
	moments := float64(8*trainable) / (1 << 20)
	fmt.Printf("config %s, batch %d, LoRA r=%d, recompute_mlp %v, bf16 %v\n", *name, *batch, *r, *recompute, *bf16)
	fmt.Printf("  weights           %9.1f MiB\n", weights)
	fmt.Printf("  adapters          %9.1f MiB\n", adapters)
	fmt.Printf("  plans + workspace %9.1f MiB\n", planMiB)
	fmt.Printf("  gradients         %9.1f MiB\n", gradMiB)
	fmt.Printf("  AdamW moments     %9.1f MiB\n", moments)
	fmt.Printf("  total             %9.1f MiB\n", weights+adapters+planMiB+gradMiB+moments)
}
