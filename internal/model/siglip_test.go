package model_test

import (
	"math"
	"testing"

	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/model/modeltest"
)

// SigLIP against testdata/siglip's PyTorch reference (modeling_siglip.py's
// semantics), in fp32 on the CPU backend.

func TestSiglipGoldenParity(t *testing.T) { modeltest.SigLIPForward(t, cpu.New(), 1e-4, false) }

func TestSiglipGoldenGradients(t *testing.T) { modeltest.SigLIPGradients(t, cpu.New(), 1e-4) }

// TestSiglipReferenceLoss recomputes the reference's sigmoid loss,
// -Σ logsigmoid(±logits)/n, from its logits, which ties the embedding
// gradients the gradient test starts from to that loss.
func TestSiglipReferenceLoss(t *testing.T) {
	r := modeltest.LoadSigLIP(t)
	logits := r.F32(t, "logits_per_text")
	n := r.N
	var l float64
	for i := range n {
		for j := range n {
			z := float64(logits[i*n+j])
			if i != j {
				z = -z
			}
			l += math.Log1p(math.Exp(-z)) // -logsigmoid(z)
		}
	}
	l /= float64(n)
	if want := float64(r.F32(t, "loss")[0]); !(math.Abs(l-want) <= 1e-5*math.Max(1, want)) {
		t.Errorf("loss from the reference logits %.6f, reference loss %.6f", l, want)
	}
}
