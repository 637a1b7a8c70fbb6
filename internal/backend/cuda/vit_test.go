//go:build cuda || cudaemu

package cuda_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/model"
)

// narrowViT is a one-layer CLIP whose vision tower has the sequence length
// of a larger ViT (patch 2: image 28 gives 197 tokens like ViT-B/16, 32
// gives 257 like ViT-L/14, 48 gives 577 like ViT-L/14-336) at width 64
// with one head of 64, the head size of those models, so the attention
// kernels decide as they would there (TestAttentionLongSequencePaths).
func narrowViT(imageSize int) model.Config {
	c := model.TinyConfig()
	c.Vision.ImageSize, c.Vision.PatchSize, c.Vision.NumHiddenLayers = imageSize, 2, 1
	c.Vision.HiddenSize, c.Vision.IntermediateSize, c.Vision.NumAttentionHeads = 64, 256, 1
	c.Text.NumHiddenLayers, c.Text.MaxPositionEmbeddings = 1, 8
	return c
}

// The CUDA backend agrees with the CPU backend on the embeddings and a
// training step's gradients at 197, 257 and 577 vision tokens (fp32 1e-4,
// bf16 2e-2 as in TestModelGoldenParity).
func TestModelLongVisionSequences(t *testing.T) {
	for _, c := range []struct{ image, seq int }{{28, 197}, {32, 257}, {48, 577}} {
		cfg := narrowViT(c.image)
		if got := cfg.Vision.SeqLen(); got != c.seq {
			t.Fatalf("image %d patch 2: SeqLen %d, want %d", c.image, got, c.seq)
		}
		const n = 2
		rng := rand.New(rand.NewPCG(uint64(c.seq), 5))
		g := golden{n: n, pixels: randSlice(rng, n*3*c.image*c.image, 1)}
		for i := 0; i < n*cfg.Text.MaxPositionEmbeddings; i++ {
			g.ids = append(g.ids, int32(rng.IntN(cfg.Text.VocabSize)))
		}
		run := func(t *testing.T, be backend.Backend) result {
			m, err := model.New(cfg, be, 21)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Free()
			return stepModel(t, be, m, g, false)
		}
		want := run(t, cpu.New())
		for _, p := range precisions[:2] {
			t.Run(fmt.Sprintf("T%d/%s", c.seq, p.name), func(t *testing.T) {
				be := gpu(t, p.opts)
				// -short keeps the longest, fp32 (K/V in global memory);
				// 197 and 257 take the head-size-64 kernels that the golden
				// tests cover at 50 and 77.
				if p.opts.BF16 || c.seq != 577 {
					skipShortEmulated(t, be)
				}
				r := run(t, be)
				rel := relErr
				if reduced(p.opts) {
					rel = relL2
				}
				if e := rel(r.img, want.img); !(e <= p.tol) {
					t.Errorf("image embeddings vs CPU: %.2e > %g", e, p.tol)
				}
				if e := rel(r.txt, want.txt); !(e <= p.tol) {
					t.Errorf("text embeddings vs CPU: %.2e > %g", e, p.tol)
				}
				compareGrads(t, "vs CPU backend", r.grads, want.grads, p.tol, reduced(p.opts))
			})
		}
	}
}
