//go:build cuda || cudaemu

package cuda_test

import (
	"testing"

	"github.com/clipline/clipline/internal/model/modeltest"
)

// SigLIP on the GPU against testdata/siglip's PyTorch reference, in every
// precision mode: fp32 within 1e-4 (absolute on the embeddings, relative
// per tensor on the gradients), the reduced ones within 2e-2 (relative)
// forward and 5e-2 on the gradients (per tensor; the CLIP golden holds all
// gradients as one vector to 2e-2 and single tensors to 2.5 times that).
// Seen on the emulator (gelu_pytorch_tanh): fp32 3e-6 forward, 1.6e-6
// gradients; bf16 and tf32 8.6e-4 forward, 1.7e-3 gradients; bf16auto
// 4.2e-3 and 1.2e-2.
func TestSiglipGolden(t *testing.T) {
	for _, c := range precisions {
		t.Run(c.name, func(t *testing.T) {
			be := gpu(t, c.opts)
			if reduced(c.opts) {
				skipShortEmulated(t, be) // the same kernels as fp32's, rounding aside
				modeltest.SigLIPForward(t, be, c.tol, true)
				modeltest.SigLIPGradients(t, be, 2.5*c.tol)
				return
			}
			if !(testing.Short() && emulated(be)) { // the gradient check runs a forward too
				modeltest.SigLIPForward(t, be, c.tol, false)
			}
			modeltest.SigLIPGradients(t, be, c.tol)
		})
	}
}
