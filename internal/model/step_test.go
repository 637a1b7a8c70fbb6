package model

import (
	"math"
	"testing"

	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/loss"
)

// TestTrainStepChunks: a batch run in chunks of a smaller plan (GradCache)
// gives the plain batch's loss and gradients (up to the order of the
// chunks' sums), and GradScale scales every gradient, logit_scale's too.
func TestTrainStepChunks(t *testing.T) {
	be := cpu.New()
	cfg := microConfig()
	m, _ := New(cfg, be, 5)
	n := 5
	ids, pixels := randomBatch(cfg, n, 4)
	o := loss.Options{ImageIDs: []int64{1, 2, 1, 3, 4}}
	grads := func(B int, scale float32) (float32, map[string][]float32) {
		t.Helper()
		vp, tp := m.NewVisionPlan(B, true), m.NewTextPlan(B, true)
		defer vp.Free()
		defer tp.Free()
		s, err := m.NewTrainStep(vp, tp)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Free()
		m.ZeroGrads()
		b := hostBatch(m, ids, pixels, n, o)
		b.GradScale = scale
		r, err := s.Run(b)
		if err != nil {
			t.Fatal(err)
		}
		g := map[string][]float32{}
		for _, p := range m.Params() {
			g[p.Name] = download(be, p.G)
		}
		return r.Loss, g
	}
	l0, plain := grads(n, 0)
	for _, c := range []struct {
		B     int
		scale float32
	}{{2, 1}, {1, 1}, {n, 0.25}} {
		l, g := grads(c.B, c.scale)
		if !(math.Abs(float64(l-l0)) <= 1e-6*math.Abs(float64(l0))) {
			t.Errorf("chunks of %d: loss %v, plain batch %v", c.B, l, l0)
		}
		for name, want := range plain {
			w := make([]float32, len(want))
			for i := range want {
				w[i] = c.scale * want[i]
			}
			if d := relDiff(g[name], w); !(d <= 1e-5) {
				t.Errorf("chunks of %d, scale %v: %s differs by %.2e (relative)", c.B, c.scale, name, d)
			}
		}
	}
	if _, err := m.NewTrainStep(m.NewVisionPlan(2, false), m.NewTextPlan(2, true)); err == nil {
		t.Error("a training step on an inference plan was accepted")
	}
}
