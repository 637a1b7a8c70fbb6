package loss

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/clipline/clipline/internal/safetensors"
	"github.com/clipline/clipline/internal/sharedtest"
)

func randn(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// lossFunc is InfoNCE or Sigmoid.
type lossFunc func(img, txt []float32, n, D int, o Options) (Result, error)

// checkFD compares every analytic gradient of f (embeddings, logit_scale
// when it learns, logit_bias for the sigmoid loss) with central
// differences of the float64 loss.
func checkFD(t *testing.T, f lossFunc, img, txt []float32, n, D int, o Options) {
	t.Helper()
	r, err := f(img, txt, n, D, o)
	if err != nil {
		t.Fatal(err)
	}
	lossAt := func() float64 {
		r2, err := f(img, txt, n, D, o)
		if err != nil {
			t.Fatal(err)
		}
		return r2.loss64
	}
	const h = 1e-3
	worst := 0.0
	near := func(what string, analytic float32, fd float64) {
		d := math.Abs(fd - float64(analytic))
		worst = math.Max(worst, d)
		if !(d <= 1e-5+1e-3*math.Abs(fd)) {
			t.Errorf("%s: analytic %.7g, finite difference %.7g", what, analytic, fd)
		}
	}
	check := func(what string, x []float32, g []float32) {
		for i := range x {
			x0 := x[i]
			x[i] = x0 + h
			hi, up := lossAt(), x[i]
			x[i] = x0 - h
			lo, down := lossAt(), x[i]
			x[i] = x0
			near(fmt.Sprintf("%s[%d]", what, i), g[i], (hi-lo)/float64(up-down))
		}
	}
	check("dImg", img, r.DImg)
	check("dTxt", txt, r.DTxt)
	scalar := func(what string, p *float32, g float32) {
		v := *p
		*p = v + h
		hi, up := lossAt(), *p
		*p = v - h
		lo, down := lossAt(), *p
		*p = v
		near(what, g, (hi-lo)/float64(up-down))
	}
	if o.Temperature == 0 {
		scalar("dLogitScale", &o.LogitScale, r.DLogitScale)
	}
	scalar("dLogitBias", &o.LogitBias, r.DLogitBias) // 0 for InfoNCE: a softmax ignores a shift
	t.Logf("worst |analytic - finite difference| %.2e", worst)
}

func TestFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n, D := 6, 8
	for _, tc := range []struct {
		name string
		f    lossFunc
		n    int
		o    Options
	}{
		{"learned scale", InfoNCE, n, Options{LogitScale: 2.3}},
		{"temperature", InfoNCE, n, Options{Temperature: 0.2}},
		{"positive mask", InfoNCE, n, Options{LogitScale: 1.5, ImageIDs: []int64{7, 3, 7, 9, 3, 7}}},
		{"matryoshka", InfoNCE, n, Options{LogitScale: 1.2, Dims: []int{8, 4, 2}}},
		{"all", InfoNCE, n, Options{LogitScale: 0.7, ImageIDs: []int64{1, 1, 2, 3, 4, 2}, Dims: []int{3, 8}}},
		{"sigmoid/siglip init", Sigmoid, n, Options{LogitScale: SigmoidInitLogitScale, LogitBias: SigmoidInitLogitBias}},
		{"sigmoid/learned", Sigmoid, n, Options{LogitScale: 1.7, LogitBias: -2.5}},
		{"sigmoid/temperature", Sigmoid, n, Options{Temperature: 0.3, LogitBias: -1}},
		{"sigmoid/positive mask", Sigmoid, n, Options{LogitScale: 1.5, LogitBias: -1, ImageIDs: []int64{7, 3, 7, 9, 3, 7}}},
		{"sigmoid/matryoshka", Sigmoid, n, Options{LogitScale: 1.2, LogitBias: 0.5, Dims: []int{8, 4, 2}}},
		{"sigmoid/all", Sigmoid, n, Options{LogitScale: 0.7, LogitBias: -0.3, ImageIDs: []int64{1, 1, 2, 3, 4, 2}, Dims: []int{3, 8}}},
		{"sigmoid/one pair", Sigmoid, 1, Options{LogitScale: 1, LogitBias: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkFD(t, tc.f, randn(rng, tc.n*D), randn(rng, tc.n*D), tc.n, D, tc.o)
		})
	}
}

func TestHandCases(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// One pair: a softmax over one logit, loss 0 and no gradient.
	r, err := InfoNCE(randn(rng, 4), randn(rng, 4), 1, 4, Options{LogitScale: 2})
	if err != nil || r.Loss != 0 || r.DLogitScale != 0 {
		t.Errorf("single pair: loss %v dScale %v err %v", r.Loss, r.DLogitScale, err)
	}
	// Every pair shows the same image: no negatives at all.
	r, _ = InfoNCE(randn(rng, 12), randn(rng, 12), 3, 4, Options{LogitScale: 2, ImageIDs: []int64{5, 5, 5}})
	if r.Loss != 0 {
		t.Errorf("all positives: loss %v, want 0", r.Loss)
	}
	for _, g := range append(r.DImg, r.DTxt...) {
		if g != 0 {
			t.Fatalf("all positives: nonzero gradient %v", g)
		}
	}
	// Two pairs, identical unit vectors on the diagonal, orthogonal across:
	// logits [[s,0],[0,s]], loss = log(1+e^-s).
	img := []float32{1, 0, 0, 2}
	txt := []float32{3, 0, 0, 1}
	r, _ = InfoNCE(img, txt, 2, 2, Options{Temperature: 0.5})
	if want := math.Log(1 + math.Exp(-2)); !(math.Abs(float64(r.Loss)-want) <= 1e-6) || r.Scale != 2 {
		t.Errorf("2x2: loss %v scale %v, want %v and 2", r.Loss, r.Scale, want)
	}
	// Clamp: exp(5) > 100, so s = 100 and logit_scale gets no gradient.
	r, _ = InfoNCE(randn(rng, 12), randn(rng, 12), 3, 4, Options{LogitScale: 5})
	if r.Scale != 100 || r.DLogitScale != 0 {
		t.Errorf("clamp: scale %v dScale %v, want 100 and 0", r.Scale, r.DLogitScale)
	}
	// Matryoshka: the sum of the per-prefix losses, each its own loss.
	a, b := randn(rng, 24), randn(rng, 24)
	r, _ = InfoNCE(a, b, 3, 8, Options{LogitScale: 1, Dims: []int{8, 4}})
	pre := func(x []float32, d int) []float32 {
		var o []float32
		for i := range 3 {
			o = append(o, x[i*8:i*8+d]...)
		}
		return o
	}
	r4, _ := InfoNCE(pre(a, 4), pre(b, 4), 3, 4, Options{LogitScale: 1})
	r8, _ := InfoNCE(a, b, 3, 8, Options{LogitScale: 1})
	if !(math.Abs(float64(r.Loss-(r4.Loss+r8.Loss))) <= 1e-6) {
		t.Errorf("matryoshka: %v != %v + %v", r.Loss, r4.Loss, r8.Loss)
	}
}

func TestErrors(t *testing.T) {
	x := make([]float32, 8)
	for _, o := range []Options{{Dims: []int{5}}, {ImageIDs: []int64{1}}, {Temperature: -1}} {
		if _, err := InfoNCE(x, x, 2, 4, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	if _, err := InfoNCE(x, x[:4], 2, 4, Options{}); err == nil {
		t.Error("short txt: no error")
	}
}

// TestGoldenLoss reproduces OpenAI CLIP's loss on the tiny-clip reference
// embeddings (mean of the two cross-entropies with the model's logit_scale).
func TestGoldenLoss(t *testing.T) {
	dir := sharedtest.Dir(t, "golden", "tiny-clip")
	ref, err := safetensors.Load(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := safetensors.Load(filepath.Join(dir, "model", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	get := func(f *safetensors.File, name string) []float32 {
		v, err := f.Tensors[name].Float32()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	img, txt := get(ref, "image_embeds"), get(ref, "text_embeds")
	n := ref.Tensors["image_embeds"].Shape[0]
	D := ref.Tensors["image_embeds"].Shape[1]
	r, err := InfoNCE(img, txt, n, D, Options{LogitScale: get(mod, "logit_scale")[0]})
	if err != nil {
		t.Fatal(err)
	}
	want := get(ref, "loss")[0]
	t.Logf("loss %.7f, reference %.7f", r.Loss, want)
	if !(math.Abs(float64(r.Loss-want)) <= 1e-5) {
		t.Errorf("loss %v, reference %v", r.Loss, want)
	}
	if g := get(ref, "grad.logit_scale")[0]; !(math.Abs(float64(r.DLogitScale-g)) <= 1e-5) {
		t.Errorf("dLogitScale %v, reference %v", r.DLogitScale, g)
	}
}
