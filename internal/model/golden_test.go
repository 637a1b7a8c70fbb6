package model

import (
	"math"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/loss"
	"github.com/clipline/clipline/internal/safetensors"
	"github.com/clipline/clipline/internal/sharedtest"
	"github.com/clipline/clipline/internal/simd"
)

// golden loads ../shared/golden/tiny-clip: the model and the reference tensors.
func golden(t *testing.T, be backend.Backend) (*Model, map[string]safetensors.Tensor) {
	t.Helper()
	dir := sharedtest.Dir(t, "golden", "tiny-clip")
	m, err := Load(filepath.Join(dir, "model"), be)
	if err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Load(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return m, f.Tensors
}

func f32(t *testing.T, ts map[string]safetensors.Tensor, name string) []float32 {
	t.Helper()
	tt, ok := ts[name]
	if !ok {
		t.Fatalf("reference tensor %s missing", name)
	}
	v, err := tt.Float32()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

func goldenInputs(t *testing.T, ts map[string]safetensors.Tensor) (ids []int32, pixels []float32, n int) {
	t.Helper()
	raw, err := ts["input_ids"].Int64()
	if err != nil {
		t.Fatal(err)
	}
	ids = make([]int32, len(raw))
	for i, v := range raw {
		ids[i] = int32(v)
	}
	return ids, f32(t, ts, "pixel_values"), ts["input_ids"].Shape[0]
}

func download(be backend.Backend, b backend.Buf) []float32 {
	v := make([]float32, b.Len())
	be.Download(v, b)
	return v
}

func maxAbsDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// logitsPerImage is exp(logit_scale) · norm(img)·norm(txt)ᵀ.
func logitsPerImage(img, txt []float32, n, D int, logitScale float32) []float32 {
	norm := func(x []float32) []float64 {
		u := make([]float64, len(x))
		for i := range n {
			var ss float64
			for k := range D {
				ss += float64(x[i*D+k]) * float64(x[i*D+k])
			}
			for k := range D {
				u[i*D+k] = float64(x[i*D+k]) / math.Sqrt(ss)
			}
		}
		return u
	}
	u, v := norm(img), norm(txt)
	s := math.Exp(float64(logitScale))
	out := make([]float32, n*n)
	for i := range n {
		for j := range n {
			var d float64
			for k := range D {
				d += u[i*D+k] * v[j*D+k]
			}
			out[i*n+j] = float32(s * d)
		}
	}
	return out
}

func TestGoldenParity(t *testing.T) {
	be := cpu.New()
	m, ts := golden(t, be)
	ids, pixels, n := goldenInputs(t, ts)
	D := m.Config().ProjectionDim
	for _, training := range []bool{false, true} {
		// Plans larger than the batch check the n < B path too.
		vp, tp := m.NewVisionPlan(n+2, training), m.NewTextPlan(n+1, training)
		img, txt := forward(t, m, vp, tp, ids, pixels, n)
		dImg := maxAbsDiff(img, f32(t, ts, "image_embeds"))
		dTxt := maxAbsDiff(txt, f32(t, ts, "text_embeds"))
		dLog := maxAbsDiff(logitsPerImage(img, txt, n, D, m.LogitScale()), f32(t, ts, "logits_per_image"))
		t.Logf("training plan %v: max |diff| image_embeds %.2e, text_embeds %.2e, logits_per_image %.2e", training, dImg, dTxt, dLog)
		if !(dImg <= 1e-4 && dTxt <= 1e-4 && dLog <= 1e-4) {
			t.Errorf("parity beyond 1e-4: image %.2e text %.2e logits %.2e", dImg, dTxt, dLog)
		}
	}
}

// relDiff is max|a-b| / max(max|b|, 1e-6).
func relDiff(a, b []float32) float64 {
	var mb float64
	for _, x := range b {
		mb = math.Max(mb, math.Abs(float64(x)))
	}
	return maxAbsDiff(a, b) / math.Max(mb, 1e-6)
}

// step runs one training step (forward, loss, backward) of n rows on
// training plans and returns the loss.
func step(t testing.TB, m *Model, vp *VisionPlan, tp *TextPlan, ids []int32, pixels []float32, n int, o loss.Options) float64 {
	t.Helper()
	s, err := m.NewTrainStep(vp, tp)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Free()
	r, err := s.Run(hostBatch(m, ids, pixels, n, o))
	if err != nil {
		t.Fatal(err)
	}
	return float64(r.Loss)
}

// hostBatch is a training batch of n rows from host slices, with InfoNCE
// at the model's logit_scale (o's other options kept).
func hostBatch(m *Model, ids []int32, pixels []float32, n int, o loss.Options) *Batch {
	L, per := len(ids)/n, len(pixels)/n
	return &Batch{N: n,
		Tokens: func(lo, hi int) []int32 { return ids[lo*L : hi*L] },
		Pixels: func(lo, hi int) []float32 { return pixels[lo*per : hi*per] },
		Loss:   infoNCE(m, o),
	}
}

// infoNCE is the loss of o at the model's current logit_scale.
func infoNCE(m *Model, o loss.Options) func(img, txt []float32, n int) (loss.Result, error) {
	return func(img, txt []float32, n int) (loss.Result, error) {
		o.LogitScale = m.LogitScale()
		return loss.InfoNCE(img, txt, n, m.Config().ProjectionDim, o)
	}
}

func TestGoldenGradients(t *testing.T) {
	be := cpu.New()
	m, ts := golden(t, be)
	checkGradients(t, m, ts)
}

// checkGradients runs a training step on the reference's inputs and
// compares the loss (1e-5) and every gradient (1e-4 relative) with it.
func checkGradients(t *testing.T, m *Model, ts map[string]safetensors.Tensor) {
	t.Helper()
	be := m.Backend()
	ids, pixels, n := goldenInputs(t, ts)
	vp, tp := m.NewVisionPlan(n, true), m.NewTextPlan(n, true)
	m.ZeroGrads()
	l := step(t, m, vp, tp, ids, pixels, n, loss.Options{})
	want := f32(t, ts, "loss")[0]
	t.Logf("loss %.7f, reference %.7f", l, want)
	if !(math.Abs(l-float64(want)) <= 1e-5) {
		t.Errorf("loss %v, reference %v", l, want)
	}
	type res struct {
		name string
		rel  float64
	}
	var all []res
	for _, p := range m.Params() {
		ref := f32(t, ts, "grad."+p.Name)
		g := download(be, p.G)[:p.Len()]
		if strings.HasSuffix(p.Name, "self_attn.k_proj.bias") {
			// Analytically zero: a key bias adds q·b to every logit of a
			// query's row, which softmax ignores. Both sides hold float
			// noise (~1e-8), so only their smallness is comparable.
			ma, mb := maxAbsDiff(g, make([]float32, len(g))), maxAbsDiff(ref, make([]float32, len(ref)))
			t.Logf("%s (analytically 0): max |ours| %.1e, max |reference| %.1e", p.Name, ma, mb)
			if !(ma <= 1e-6 && mb <= 1e-6) {
				t.Errorf("grad.%s should vanish: max |ours| %.2e, max |reference| %.2e", p.Name, ma, mb)
			}
			continue
		}
		all = append(all, res{p.Name, relDiff(g, ref)})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].rel > all[j].rel })
	for _, r := range all[:3] {
		t.Logf("worst relative gradient diff: %-60s %.2e", r.name, r.rel)
	}
	for _, r := range all {
		if !(r.rel <= 1e-4) {
			t.Errorf("grad.%s: relative diff %.2e > 1e-4", r.name, r.rel)
		}
	}
	if len(m.Params()) != len(ts)-countNonGrad(ts) {
		t.Errorf("model has %d parameters, reference has %d gradients", len(m.Params()), len(ts)-countNonGrad(ts))
	}
}

func countNonGrad(ts map[string]safetensors.Tensor) int {
	k := 0
	for name := range ts {
		if len(name) < 5 || name[:5] != "grad." {
			k++
		}
	}
	return k
}

// The bf16 mode (cpu,bf16) keeps every embedding of the golden model
// within cosine 0.999 of PyTorch's fp32 ones, at every bf16 kernel level
// this CPU runs, while really changing them (the products are rounded).
func TestGoldenBF16Cosine(t *testing.T) {
	for _, bl := range simd.BF16Available() {
		be := cpu.NewBF16Level(2, max(bl, simd.Selected()), bl)
		t.Run(be.KernelName(), func(t *testing.T) {
			m, ts := golden(t, be)
			ids, pixels, n := goldenInputs(t, ts)
			D := m.Config().ProjectionDim
			img, txt := forward(t, m, m.NewVisionPlan(n, false), m.NewTextPlan(n, false), ids, pixels, n)
			for _, c := range []struct {
				name     string
				got, ref []float32
			}{{"image_embeds", img, f32(t, ts, "image_embeds")}, {"text_embeds", txt, f32(t, ts, "text_embeds")}} {
				worst := 1.0
				for i := range n {
					worst = math.Min(worst, cosine(c.got[i*D:(i+1)*D], c.ref[i*D:(i+1)*D]))
				}
				d := maxAbsDiff(c.got, c.ref)
				t.Logf("%s: lowest cosine to fp32 %.6f, max |diff| %.2e", c.name, worst, d)
				if !(worst >= 0.999) {
					t.Errorf("%s: cosine %.6f to the fp32 reference, want >= 0.999", c.name, worst)
				}
				if !(d > 1e-4) {
					t.Errorf("%s: max |diff| %.2e to fp32: within fp32 parity, so nothing ran in bf16", c.name, d)
				}
			}
		})
	}
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}
