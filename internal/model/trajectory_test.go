package model

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/loss"
	"github.com/clipline/clipline/internal/optim"
)

// trajectory is testdata/trajectory/tiny_clip_adamw.json: PyTorch's losses,
// gradient norms and final parameter values over a few AdamW steps of the
// golden model.
type trajectory struct {
	Steps        int                  `json:"steps"`
	LearningRate float64              `json:"learning_rate"`
	WeightDecay  float64              `json:"weight_decay"`
	MaxGradNorm  float64              `json:"max_grad_norm"`
	Betas        [2]float64           `json:"betas"`
	Eps          float64              `json:"eps"`
	Loss         []float64            `json:"loss"`
	GradNorm     []float64            `json:"grad_norm"`
	Params       map[string][]float64 `json:"params"`
}

// TestGoldenTrajectory: five AdamW steps of full fine-tuning of the golden
// model (every tensor, logit_scale included; gradient clipping; constant
// learning rate) follow PyTorch's (testdata/trajectory/tiny_clip_adamw.py
// wrote the reference): the loss before each step and after the last, the
// gradient norms, and a few parameters' values at the end. One step's
// gradients are checked by TestGoldenGradients; this checks that the
// optimizer, the clipping and the steps compose as PyTorch's do.
func TestGoldenTrajectory(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "trajectory", "tiny_clip_adamw.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref trajectory
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	be := cpu.New()
	m, ts := golden(t, be)
	ids, pixels, n := goldenInputs(t, ts)
	vp, tp := m.NewVisionPlan(n, true), m.NewTextPlan(n, true)
	s, err := m.NewTrainStep(vp, tp)
	if err != nil {
		t.Fatal(err)
	}
	m.ZeroGrads()
	var params []optim.Param
	for _, p := range m.Params() {
		params = append(params, optim.Param{Name: p.Name, W: p.W, G: p.G, Decay: p.Decay})
	}
	opt, err := optim.NewAdamW(be, params, ref.WeightDecay)
	if err != nil {
		t.Fatal(err)
	}
	if opt.Beta1 != float32(ref.Betas[0]) || opt.Beta2 != float32(ref.Betas[1]) || opt.Eps != float32(ref.Eps) {
		t.Fatalf("AdamW betas %v %v eps %v, reference %v %v", opt.Beta1, opt.Beta2, opt.Eps, ref.Betas, ref.Eps)
	}
	if len(ref.Loss) != ref.Steps+1 || len(ref.GradNorm) != ref.Steps {
		t.Fatalf("reference has %d losses and %d norms for %d steps", len(ref.Loss), len(ref.GradNorm), ref.Steps)
	}
	b := hostBatch(m, ids, pixels, n, loss.Options{})
	// near reports got against want relative to |want|.
	near := func(what string, got, want, tol float64) {
		t.Helper()
		d := math.Abs(got-want) / math.Max(math.Abs(want), 1e-6)
		t.Logf("%-50s %.7f, PyTorch %.7f (relative %.1e)", what, got, want, d)
		if !(d <= tol) {
			t.Errorf("%s: %v, PyTorch %v: relative difference %.2e > %.0e", what, got, want, d, tol)
		}
	}
	for k := range ref.Steps {
		m.ZeroGrads()
		r, err := s.Run(b)
		if err != nil {
			t.Fatal(err)
		}
		near(fmt.Sprintf("loss before step %d", k+1), float64(r.Loss), ref.Loss[k], 1e-5)
		norm := optim.ClipGradNorm(be, params, ref.MaxGradNorm)
		near(fmt.Sprintf("gradient norm at step %d", k+1), norm, ref.GradNorm[k], 1e-5)
		opt.Step(ref.LearningRate)
	}
	img, txt, err := s.Forward(b)
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.Loss(img, txt, n)
	if err != nil {
		t.Fatal(err)
	}
	near("loss after the last step", float64(r.Loss), ref.Loss[ref.Steps], 1e-5)
	for name, want := range ref.Params {
		p := m.Param(name)
		if p == nil {
			t.Fatalf("reference parameter %s missing", name)
		}
		got := download(be, p.W)[:len(want)]
		w32 := make([]float32, len(want))
		for i, v := range want {
			w32[i] = float32(v)
		}
		// Relative to the tensor's values: AdamW moves every entry by about
		// the learning rate whatever its gradient's size.
		d := relDiff(got, w32)
		t.Logf("%-50s relative difference %.1e", name, d)
		if !(d <= 1e-5) {
			t.Errorf("%s after %d steps: %v, PyTorch %v (relative difference %.2e)", name, ref.Steps, got, want, d)
		}
	}
}
