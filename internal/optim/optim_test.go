package optim

import (
	"math"
	"reflect"
	"testing"

	"github.com/clipline/clipline/internal/backend/cpu"
)

// Values computed by hand from transformers.optimization's lr_lambda
// functions with num_warmup_steps=2, num_training_steps=10.
func TestScheduleMatchesHuggingFace(t *testing.T) {
	want := map[string][]float64{
		// step:       0    1    2    3         4         5         6    7         8         9         10
		"linear":               {0, 0.5, 1, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0},
		"cosine":               {0, 0.5, 1, 0.9619397662556434, 0.8535533905932737, 0.6913417161825449, 0.5, 0.3086582838174551, 0.14644660940672627, 0.03806023374435663, 0},
		"constant_with_warmup": {0, 0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		"constant":             {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
	}
	for kind, fs := range want {
		s, err := NewSchedule(kind, 2e-5, 2, 10)
		if err != nil {
			t.Fatal(err)
		}
		for step, f := range fs {
			if got := s.Factor(step); !(math.Abs(got-f) <= 1e-12) {
				t.Errorf("%s step %d: factor %v, want %v", kind, step, got, f)
			}
			if got := s.LR(step); !(math.Abs(got-2e-5*f) <= 1e-18) {
				t.Errorf("%s step %d: lr %v, want %v", kind, step, got, 2e-5*f)
			}
		}
		// Past the end linear stays at 0 (max(0, ...)); HF's cosine would
		// rise again there, but training never goes past Total.
		if kind == "linear" {
			if s.Factor(13) != 0 {
				t.Errorf("%s past the end: %v", kind, s.Factor(13))
			}
		}
	}
	// No warmup: the first step runs at the full rate.
	s, _ := NewSchedule("cosine", 1, 0, 4)
	if s.Factor(0) != 1 || !(math.Abs(s.Factor(2)-0.5) <= 1e-15) {
		t.Errorf("cosine without warmup: %v %v", s.Factor(0), s.Factor(2))
	}
	// total == warmup: the denominators are max(1, ...), never 0.
	s, _ = NewSchedule("linear", 1, 3, 3)
	if s.Factor(3) != 0 || math.IsNaN(s.Factor(3)) {
		t.Errorf("linear at total==warmup: %v", s.Factor(3))
	}
	if _, err := NewSchedule("polynomial", 1, 0, 1); err == nil {
		t.Error("unknown kind accepted")
	}
}

func TestWarmupSteps(t *testing.T) {
	cases := []struct {
		total int
		ratio float64
		steps int
		want  int
	}{
		{100, 0.1, 0, 10},
		{702, 0.1, 0, 71}, // ceil(70.2)
		{70, 0.1, 0, 7},
		{100, 0.07, 0, 8}, // Python: math.ceil(100*0.07) == 8 (7.000000000000001)
		{100, 0.1, 5, 5},  // warmup_steps > 0 overrides the ratio
		{100, 0, 0, 0},
	}
	for _, c := range cases {
		if got := WarmupSteps(c.total, c.ratio, c.steps); got != c.want {
			t.Errorf("WarmupSteps(%d, %v, %d) = %d, want %d", c.total, c.ratio, c.steps, got, c.want)
		}
	}
}

// adamRef is torch.optim.AdamW's update in float64.
func adamRef(p, g, m, v []float64, lr, wd float64, t int) {
	b1, b2, eps := 0.9, 0.999, 1e-8
	bc1 := 1 - math.Pow(b1, float64(t))
	bc2 := 1 - math.Pow(b2, float64(t))
	for i := range p {
		p[i] *= 1 - lr*wd
		m[i] = b1*m[i] + (1-b1)*g[i]
		v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
		p[i] -= lr / bc1 * m[i] / (math.Sqrt(v[i])/math.Sqrt(bc2) + eps)
	}
}

func TestAdamWDecayOnlyWhereFlagged(t *testing.T) {
	be := cpu.NewWorkers(1)
	w1 := []float32{0.5, -1, 2}
	w2 := []float32{0.25, 0.75}
	p := []Param{
		{Name: "w", W: cpu.Wrap(append([]float32(nil), w1...)), G: be.Alloc(3), Decay: true},
		{Name: "b", W: cpu.Wrap(append([]float32(nil), w2...)), G: be.Alloc(2), Decay: false},
	}
	o, err := NewAdamW(be, p, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	ref := [][]float64{f64(w1), f64(w2)}
	m := [][]float64{make([]float64, 3), make([]float64, 2)}
	v := [][]float64{make([]float64, 3), make([]float64, 2)}
	grads := [][][]float32{
		{{0.1, -0.2, 0.3}, {1, -1}},
		{{-0.5, 0.1, 0}, {0.01, 2}},
		{{0.2, 0.2, 0.2}, {-0.3, 0.4}},
	}
	lrs := []float64{1e-2, 5e-3, 1e-3}
	for step, gs := range grads {
		for i := range p {
			copy(cpu.Data(p[i].G), gs[i])
		}
		o.Step(lrs[step])
		for i, wd := range []float64{0.1, 0} {
			adamRef(ref[i], f64(gs[i]), m[i], v[i], lrs[step], wd, step+1)
		}
	}
	if o.Steps() != 3 {
		t.Errorf("Steps() = %d", o.Steps())
	}
	for i := range p {
		got := cpu.Data(p[i].W)
		for j := range got {
			if d := math.Abs(float64(got[j]) - ref[i][j]); !(d <= 1e-6*math.Max(1, math.Abs(ref[i][j]))) {
				t.Errorf("%s[%d] = %v, want %v", p[i].Name, j, got[j], ref[i][j])
			}
		}
	}
}

func TestAdamWStateRoundTrip(t *testing.T) {
	be := cpu.NewWorkers(1)
	mk := func() []Param {
		return []Param{
			{Name: "a", W: cpu.Wrap([]float32{1, 2, 3}), G: be.Alloc(3), Decay: true},
			{Name: "b", W: cpu.Wrap([]float32{-1}), G: be.Alloc(1)},
		}
	}
	setG := func(ps []Param, k float32) {
		copy(cpu.Data(ps[0].G), []float32{k, -k, 2 * k})
		copy(cpu.Data(ps[1].G), []float32{0.5 * k})
	}
	// Uninterrupted: 3 steps.
	pa := mk()
	oa, _ := NewAdamW(be, pa, 0.01)
	for s := 1; s <= 3; s++ {
		setG(pa, float32(s))
		oa.Step(0.1)
	}
	// Interrupted after 2: state saved, a new optimizer restored, 1 more step.
	pb := mk()
	ob, _ := NewAdamW(be, pb, 0.01)
	for s := 1; s <= 2; s++ {
		setG(pb, float32(s))
		ob.Step(0.1)
	}
	st := ob.State()
	pc := []Param{
		{Name: "a", W: cpu.Wrap(append([]float32(nil), cpu.Data(pb[0].W)...)), G: be.Alloc(3), Decay: true},
		{Name: "b", W: cpu.Wrap(append([]float32(nil), cpu.Data(pb[1].W)...)), G: be.Alloc(1)},
	}
	oc, _ := NewAdamW(be, pc, 0.01)
	if err := oc.LoadState(st, ob.Steps()); err != nil {
		t.Fatal(err)
	}
	setG(pc, 3)
	oc.Step(0.1)
	for i := range pa {
		if !reflect.DeepEqual(cpu.Data(pa[i].W), cpu.Data(pc[i].W)) {
			t.Errorf("%s: resumed %v, uninterrupted %v", pa[i].Name, cpu.Data(pc[i].W), cpu.Data(pa[i].W))
		}
	}
	delete(st, "exp_avg_sq.b")
	if err := oc.LoadState(st, 2); err == nil {
		t.Error("missing moment accepted")
	}
}

func TestClipGradNorm(t *testing.T) {
	be := cpu.NewWorkers(1)
	mk := func() []Param {
		return []Param{
			{Name: "a", W: be.Alloc(2), G: cpu.Wrap([]float32{3, 4})},
			{Name: "b", W: be.Alloc(1), G: cpu.Wrap([]float32{12})},
		}
	}
	p := mk()
	if n := ClipGradNorm(be, p, 1); !(math.Abs(n-13) <= 1e-12) {
		t.Errorf("norm %v, want 13", n)
	}
	coef := 1 / (13 + 1e-6)
	want := []float64{3 * coef, 4 * coef, 12 * coef}
	got := append(append([]float32(nil), cpu.Data(p[0].G)...), cpu.Data(p[1].G)...)
	for i := range want {
		if !(math.Abs(float64(got[i])-want[i]) <= 1e-7) {
			t.Errorf("clipped[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if n := GradNorm(be, p); !(math.Abs(n-1) <= 1e-6) {
		t.Errorf("norm after clipping %v", n)
	}
	// Under the limit, and disabled: untouched.
	for _, maxNorm := range []float64{100, 0} {
		p = mk()
		ClipGradNorm(be, p, maxNorm)
		if !reflect.DeepEqual(cpu.Data(p[0].G), []float32{3, 4}) || cpu.Data(p[1].G)[0] != 12 {
			t.Errorf("max %v changed gradients", maxNorm)
		}
	}
	// Non-finite: reported, gradients untouched.
	p = mk()
	cpu.Data(p[1].G)[0] = float32(math.Inf(1))
	if n := ClipGradNorm(be, p, 1); !math.IsInf(n, 1) {
		t.Errorf("norm %v, want +Inf", n)
	}
	if cpu.Data(p[0].G)[0] != 3 {
		t.Error("gradients scaled by a non-finite norm")
	}
}

func TestGroups(t *testing.T) {
	cases := map[[2]int][]int{
		{10, 1}: {1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		{10, 4}: {4, 4, 2},
		{8, 4}:  {4, 4},
		{3, 8}:  {3},
		{0, 2}:  nil,
	}
	for in, want := range cases {
		if got := Groups(in[0], in[1]); !reflect.DeepEqual(got, want) {
			t.Errorf("Groups(%d, %d) = %v, want %v", in[0], in[1], got, want)
		}
	}
}

func f64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}
