// Package modeltest holds model parity checks shared by the tests of
// several packages: internal/model runs them on the CPU backend,
// internal/backend/cuda on the GPU (or its emulator).
//
// The SigLIP checks compare a backend's forward and backward against
// testdata/siglip: a small random SiglipModel and the outputs and
// gradients of testdata/siglip/gen_reference.py, a plain-torch
// re-implementation of transformers' modeling_siglip.py.
package modeltest

import (
	"math"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/model"
	"github.com/clipline/clipline/internal/safetensors"
)

// SigLIPDir is testdata/siglip in the repository.
func SigLIPDir() string {
	_, file, _, _ := runtime.Caller(0)
	// file is <repo>/internal/model/modeltest/modeltest.go
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "siglip")
}

// Ref is a loaded reference: its tensors and inputs.
type Ref struct {
	Tensors map[string]safetensors.Tensor
	IDs     []int32
	Pixels  []float32
	N       int
}

// LoadSigLIP reads testdata/siglip/reference.safetensors.
func LoadSigLIP(t testing.TB) Ref {
	t.Helper()
	f, err := safetensors.Load(filepath.Join(SigLIPDir(), "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	r := Ref{Tensors: f.Tensors, N: f.Tensors["input_ids"].Shape[0]}
	raw, err := f.Tensors["input_ids"].Int64()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range raw {
		r.IDs = append(r.IDs, int32(v))
	}
	r.Pixels = r.F32(t, "pixel_values")
	return r
}

// F32 returns reference tensor name as float32 values.
func (r Ref) F32(t testing.TB, name string) []float32 {
	t.Helper()
	tt, ok := r.Tensors[name]
	if !ok {
		t.Fatalf("reference tensor %s missing", name)
	}
	v, err := tt.Float32()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// LoadSigLIPModel loads testdata/siglip/model into be.
func LoadSigLIPModel(t testing.TB, be backend.Backend) *model.Model {
	t.Helper()
	m, err := model.Load(filepath.Join(SigLIPDir(), "model"), be)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func download(be backend.Backend, b backend.Buf, n int) []float32 {
	v := make([]float32, b.Len())
	be.Download(v, b)
	return v[:n]
}

// maxAbs is max |a-b|.
func maxAbs(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// relMax is max |a-b| / max(max |b|, 1e-6).
func relMax(a, b []float32) float64 {
	return maxAbs(a, b) / math.Max(maxAbs(b, make([]float32, len(b))), 1e-6)
}

// SigLIPLogits is logits_per_text: norm(txt)·norm(img)ᵀ·exp(scale) + bias.
func SigLIPLogits(img, txt []float32, n, D int, scale, bias float32) []float32 {
	unit := func(x []float32) []float64 {
		u := make([]float64, len(x))
		for i := range n {
			var ss float64
			for _, v := range x[i*D : (i+1)*D] {
				ss += float64(v) * float64(v)
			}
			for k := range D {
				u[i*D+k] = float64(x[i*D+k]) / math.Sqrt(ss)
			}
		}
		return u
	}
	ui, ut := unit(img), unit(txt)
	s := math.Exp(float64(scale))
	out := make([]float32, n*n)
	for i := range n {
		for j := range n {
			var d float64
			for k := range D {
				d += ut[i*D+k] * ui[j*D+k]
			}
			out[i*n+j] = float32(s*d + float64(bias))
		}
	}
	return out
}

// embed runs both towers on the reference inputs through plans of the
// given kind, larger than the batch (the n < B path).
func embed(t testing.TB, m *model.Model, r Ref, vp *model.VisionPlan, tp *model.TextPlan) (img, txt []float32) {
	t.Helper()
	D := m.Config().ProjectionDim
	ib, err := m.VisionForward(vp, r.Pixels, r.N)
	if err != nil {
		t.Fatal(err)
	}
	img = download(m.Backend(), ib, r.N*D)
	tb, err := m.TextForward(tp, r.IDs, r.N)
	if err != nil {
		t.Fatal(err)
	}
	return img, download(m.Backend(), tb, r.N*D)
}

// SigLIPForward checks be's image and text embeddings and logits against
// the reference, on inference and training plans, within tol (maximum
// absolute difference, relative to the largest reference value when
// relative is set).
func SigLIPForward(t *testing.T, be backend.Backend, tol float64, relative bool) {
	r := LoadSigLIP(t)
	m := LoadSigLIPModel(t, be)
	defer m.Free()
	if !m.HasLogitBias() {
		t.Fatal("the SigLIP model has no logit_bias")
	}
	cmp := maxAbs
	if relative {
		cmp = relMax
	}
	D := m.Config().ProjectionDim
	for _, training := range []bool{false, true} {
		vp, tp := m.NewVisionPlan(r.N+1, training), m.NewTextPlan(r.N+2, training)
		img, txt := embed(t, m, r, vp, tp)
		dImg, dTxt := cmp(img, r.F32(t, "image_embeds")), cmp(txt, r.F32(t, "text_embeds"))
		dLog := cmp(SigLIPLogits(img, txt, r.N, D, m.LogitScale(), m.LogitBias()), r.F32(t, "logits_per_text"))
		t.Logf("%s, training plan %v: |diff| image_embeds %.2e, text_embeds %.2e, logits_per_text %.2e", be.Name(), training, dImg, dTxt, dLog)
		if !(dImg <= tol && dTxt <= tol && dLog <= tol) {
			t.Errorf("parity beyond %g: image %.2e text %.2e logits %.2e", tol, dImg, dTxt, dLog)
		}
		vp.Free()
		tp.Free()
	}
}

// SigLIPGradients runs be's backward from the reference's embedding
// gradients (the sigmoid loss's, from PyTorch), after checking the
// training plan's forward as SigLIPForward does (absolute tol), and checks every
// parameter's gradient within tol relative to the largest reference value
// of the tensor; logit_scale's and logit_bias's are the loss's own and
// left to the loss's tests. Gradients that vanish analytically (key
// biases: softmax ignores a constant added to a row's logits) are checked
// to be float noise on both sides.
func SigLIPGradients(t *testing.T, be backend.Backend, tol float64) {
	r := LoadSigLIP(t)
	m := LoadSigLIPModel(t, be)
	defer m.Free()
	D, C := m.Config().ProjectionDim, m.Config().Vision.HiddenSize
	vp, tp := m.NewVisionPlan(r.N, true), m.NewTextPlan(r.N, true)
	m.ZeroGrads()
	img, txt := embed(t, m, r, vp, tp)
	if dI, dT := maxAbs(img, r.F32(t, "image_embeds")), maxAbs(txt, r.F32(t, "text_embeds")); !(dI <= tol && dT <= tol) {
		t.Errorf("training forward beyond %g: image %.2e text %.2e", tol, dI, dT)
	}
	dImg, dTxt := be.Alloc(r.N*D), be.Alloc(r.N*D)
	be.Upload(dImg, r.F32(t, "d_image_embeds"))
	be.Upload(dTxt, r.F32(t, "d_text_embeds"))
	if err := m.VisionBackward(vp, dImg); err != nil {
		t.Fatal(err)
	}
	if err := m.TextBackward(tp, dTxt); err != nil {
		t.Fatal(err)
	}
	type res struct {
		name string
		rel  float64
	}
	var all []res
	refs := 0
	for name := range r.Tensors {
		if strings.HasPrefix(name, "grad.") {
			refs++
		}
	}
	if len(m.Params()) != refs {
		t.Errorf("the model has %d parameters, the reference %d gradients", len(m.Params()), refs)
	}
	noise := func(name string, g, ref []float32) {
		ma, mb := maxAbs(g, make([]float32, len(g))), maxAbs(ref, make([]float32, len(ref)))
		if !(ma <= 1e-5 && mb <= 1e-5) {
			t.Errorf("grad.%s should vanish: max |ours| %.2e, max |reference| %.2e", name, ma, mb)
		}
	}
	for _, p := range m.Params() {
		ref := r.F32(t, "grad."+p.Name)
		if p.Name == "logit_scale" || p.Name == "logit_bias" {
			continue
		}
		g := download(be, p.G, p.Len())
		switch {
		case strings.HasSuffix(p.Name, "self_attn.k_proj.bias"):
			noise(p.Name, g, ref)
		case p.Name == "vision_model.head.attention.in_proj_bias": // q, k, v thirds
			noise(p.Name+" (key third)", g[C:2*C], ref[C:2*C])
			all = append(all, res{p.Name + " (query third)", relMax(g[:C], ref[:C])},
				res{p.Name + " (value third)", relMax(g[2*C:], ref[2*C:])})
		default:
			all = append(all, res{p.Name, relMax(g, ref)})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].rel > all[j].rel })
	for _, x := range all[:3] {
		t.Logf("%s: worst relative gradient difference %-55s %.2e", be.Name(), x.name, x.rel)
	}
	for _, x := range all {
		if !(x.rel <= tol) {
			t.Errorf("grad.%s: relative difference %.2e > %g", x.name, x.rel, tol)
		}
	}
}
