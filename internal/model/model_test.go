package model

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/loss"
	"github.com/clipline/clipline/internal/safetensors"
	"github.com/clipline/clipline/internal/sharedtest"
)

// microConfig is small enough for finite differences over every tensor.
func microConfig() Config {
	c := DefaultConfig()
	c.Text = TextConfig{HiddenSize: 16, IntermediateSize: 32, NumAttentionHeads: 2, NumHiddenLayers: 2,
		MaxPositionEmbeddings: 8, VocabSize: 40, HiddenAct: "quick_gelu", LayerNormEps: 1e-5}
	c.Vision = VisionConfig{HiddenSize: 16, IntermediateSize: 32, NumAttentionHeads: 2, NumHiddenLayers: 2,
		ImageSize: 8, PatchSize: 4, NumChannels: 3, HiddenAct: "quick_gelu", LayerNormEps: 1e-5}
	c.ProjectionDim = 8
	return c
}

// withAct sets both towers' hidden_act.
func withAct(c Config, act string) Config {
	c.Text.HiddenAct, c.Vision.HiddenAct = act, act
	return c
}

// randomBatch makes n images and n token rows whose end-of-text token (the
// largest id) sits at a random position.
func randomBatch(cfg Config, n int, seed uint64) ([]int32, []float32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	S, T, V := cfg.Vision.ImageSize, cfg.Text.MaxPositionEmbeddings, cfg.Text.VocabSize
	pixels := make([]float32, n*3*S*S)
	for i := range pixels {
		pixels[i] = float32(rng.NormFloat64())
	}
	ids := make([]int32, n*T)
	for b := range n {
		eot := 1 + rng.IntN(T-1)
		ids[b*T] = int32(V - 2) // start token
		for i := 1; i < eot; i++ {
			ids[b*T+i] = int32(rng.IntN(V - 2))
		}
		ids[b*T+eot] = int32(V - 1)
	}
	return ids, pixels
}

func TestConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	raw1, _ := c.MarshalJSON()
	raw2, _ := DefaultConfig().MarshalJSON()
	if !bytes.Equal(raw1, raw2) || c.Text.HiddenSize != 512 || c.Vision.PatchSize != 32 || c.ProjectionDim != 512 {
		t.Errorf("empty config does not give Hugging Face's defaults: %s", raw1)
	}
	dir := sharedtest.Dir(t, "golden", "tiny-clip", "model")
	g, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	tiny := TinyConfig()
	if g.Text.HiddenSize != tiny.Text.HiddenSize || g.Vision.PatchSize != tiny.Vision.PatchSize ||
		g.ProjectionDim != 32 || g.Text.VocabSize != 512 || g.Vision.NumHiddenLayers != 2 {
		t.Errorf("golden config read as %+v", g)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := SaveConfig(path, g); err != nil {
		t.Fatal(err)
	}
	back, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	rawA, _ := g.MarshalJSON()
	rawB, _ := back.MarshalJSON()
	if !bytes.Equal(rawA, rawB) {
		t.Errorf("config round trip differs:\n%s\n%s", rawA, rawB)
	}
	var obj map[string]map[string]any
	data, _ := os.ReadFile(path)
	_ = json.Unmarshal(data, &obj)
	if obj["text_config"]["bos_token_id"] != float64(510) || obj["text_config"]["eos_token_id"] != float64(2) {
		t.Errorf("uninterpreted keys lost: %v", obj["text_config"])
	}
	old, err := ParseConfig([]byte(`{"text_config": {"hidden_size": 64, "num_attention_heads": 4}, "text_config_dict": {"hidden_size": 128},
		"vision_config_dict": {"patch_size": 16}, "vision_config": null}`))
	if err != nil || old.Text.HiddenSize != 128 || old.Text.NumAttentionHeads != 4 || old.Vision.PatchSize != 16 || old.Vision.HiddenSize != 768 {
		t.Errorf("*_config_dict not applied: %+v %v", old, err)
	}
	// LAION's gelu, SigLIP's gelu_pytorch_tanh and its alias gelu_new are
	// read into the towers' activations; anything else is refused naming
	// the key and what is allowed.
	for act, want := range map[string]backend.Activation{"quick_gelu": backend.QuickGELU, "gelu": backend.GELU,
		"gelu_pytorch_tanh": backend.GELUTanh, "gelu_new": backend.GELUTanh} {
		cfg, err := ParseConfig([]byte(`{"vision_config": {"hidden_act": "` + act + `"}, "text_config": {"hidden_act": "` + act + `"}}`))
		if err != nil {
			t.Errorf("hidden_act %q: %v", act, err)
			continue
		}
		m, err := New(withAct(microConfig(), cfg.Vision.HiddenAct), cpu.New(), 1)
		if err != nil {
			t.Errorf("hidden_act %q: %v", act, err)
			continue
		}
		if m.text.act != want || m.vision.act != want {
			t.Errorf("hidden_act %q: towers use %v and %v, want %v", act, m.text.act, m.vision.act, want)
		}
	}
	_, err = ParseConfig([]byte(`{"vision_config": {"hidden_act": "relu"}}`))
	if err == nil || !strings.Contains(err.Error(), "vision_config.hidden_act") || !strings.Contains(err.Error(), `"relu"`) ||
		!strings.Contains(err.Error(), `"gelu_pytorch_tanh"`) {
		t.Errorf("hidden_act relu: error %v, want one naming the key, the value and the supported ones", err)
	}
	for _, bad := range []string{
		`{"vision_config": {"hidden_act": "relu"}}`,
		`{"text_config": {"hidden_act": "silu"}}`,
		`{"text_config": {"hidden_size": 65}}`,
		`{"vision_config": {"image_size": 225}}`,
		`{"projection_dim": "x"}`,
	} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		} else {
			t.Logf("%s: %v", bad, err)
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	be := cpu.New()
	m, err := New(microConfig(), be, 7)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	m2, err := Load(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		if d := maxAbsDiff(download(be, p.W), download(be, m2.Param(p.Name).W)); d != 0 {
			t.Errorf("%s differs after save/load by %g", p.Name, d)
		}
	}
	if m2.LogitScale() != float32(2.6592) {
		t.Errorf("logit_scale %v", m2.LogitScale())
	}

	// BF16 storage, an extra tensor to ignore, then a missing and a mis-shaped one.
	f, err := safetensors.Load(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	bf := map[string]safetensors.Tensor{}
	want := map[string][]float32{}
	for name, tt := range f.Tensors {
		v, _ := tt.Float32()
		data := make([]byte, 2*len(v))
		w := make([]float32, len(v))
		for i, x := range v {
			b := uint16(math.Float32bits(x) >> 16) // truncation is a valid BF16 value
			binary.LittleEndian.PutUint16(data[2*i:], b)
			w[i] = math.Float32frombits(uint32(b) << 16)
		}
		bf[name] = safetensors.Tensor{DType: "BF16", Shape: tt.Shape, Data: data}
		want[name] = w
	}
	bf["text_model.embeddings.position_ids"] = safetensors.Tensor{DType: "I64", Shape: []int{1, 8}, Data: make([]byte, 64)}
	if err := safetensors.Save(filepath.Join(dir, "model.safetensors"), bf, nil); err != nil {
		t.Fatal(err)
	}
	m3, err := Load(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		if d := maxAbsDiff(download(be, m3.Param(name).W), w); d != 0 {
			t.Errorf("BF16 %s differs by %g", name, d)
		}
	}
	const victim = "vision_model.encoder.layers.1.mlp.fc1.weight"
	orig := bf[victim]
	delete(bf, victim)
	_ = safetensors.Save(filepath.Join(dir, "model.safetensors"), bf, nil)
	if _, err := Load(dir, be); err == nil || !strings.Contains(err.Error(), victim) || !strings.Contains(err.Error(), "[32 16]") {
		t.Errorf("missing tensor: %v", err)
	} else {
		t.Log(err)
	}
	bf[victim] = safetensors.Tensor{DType: "BF16", Shape: []int{16, 32}, Data: orig.Data}
	_ = safetensors.Save(filepath.Join(dir, "model.safetensors"), bf, nil)
	if _, err := Load(dir, be); err == nil || !strings.Contains(err.Error(), victim) ||
		!strings.Contains(err.Error(), "[16 32]") || !strings.Contains(err.Error(), "[32 16]") {
		t.Errorf("mis-shaped tensor: %v", err)
	} else {
		t.Log(err)
	}
}

func TestNewIsSeeded(t *testing.T) {
	be := cpu.New()
	a, _ := New(microConfig(), be, 1)
	b, _ := New(microConfig(), be, 1)
	c, _ := New(microConfig(), be, 2)
	name := "text_model.encoder.layers.0.self_attn.q_proj.weight"
	if maxAbsDiff(download(be, a.Param(name).W), download(be, b.Param(name).W)) != 0 {
		t.Error("same seed, different weights")
	}
	if maxAbsDiff(download(be, a.Param(name).W), download(be, c.Param(name).W)) == 0 {
		t.Error("different seeds, same weights")
	}
	// HF init: layer norms 1/0, biases 0, q_proj std C^-½(2L)^-½.
	if v := download(be, a.Param("vision_model.post_layernorm.weight").W); v[0] != 1 {
		t.Errorf("layer norm weight %v", v[0])
	}
	w := download(be, a.Param(name).W)
	var ss float64
	for _, x := range w {
		ss += float64(x) * float64(x)
	}
	std, want := math.Sqrt(ss/float64(len(w))), math.Pow(16, -0.5)*math.Pow(4, -0.5)
	if !(math.Abs(std-want) <= 0.2*want) {
		t.Errorf("q_proj std %.4f, want about %.4f", std, want)
	}
}

// TestRowIndependence: a row's embedding does not depend on the other rows
// of the batch, nor on the positions computed after its end-of-text token
// (text runs only max(eot)+1 positions), nor on padding after it.
func TestRowIndependence(t *testing.T) {
	be := cpu.New()
	cfg := microConfig()
	m, _ := New(cfg, be, 3)
	n, T, S := 5, cfg.Text.MaxPositionEmbeddings, cfg.Vision.ImageSize
	ids, pixels := randomBatch(cfg, n, 11)
	tp, vp := m.NewTextPlan(n, false), m.NewVisionPlan(n, false)
	tb, _ := m.TextForward(tp, ids, n)
	all := download(be, tb)
	eots := append([]int(nil), tp.EOT()...)
	ib, _ := m.VisionForward(vp, pixels, n)
	allImg := download(be, ib)
	D := cfg.ProjectionDim
	for b := range n {
		row := append([]int32(nil), ids[b*T:(b+1)*T]...)
		eot := eots[b]
		for i := eot + 1; i < T; i++ {
			row[i] = int32(i % 7) // other padding
		}
		one, err := m.TextForward(tp, row, 1)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(download(be, one), all[b*D:(b+1)*D]); !(d <= 1e-6) {
			t.Errorf("text row %d alone differs by %g", b, d)
		}
		short, _ := m.TextForward(tp, row[:eot+1], 1)
		if d := maxAbsDiff(download(be, short), all[b*D:(b+1)*D]); !(d <= 1e-6) {
			t.Errorf("text row %d cut after its end token differs by %g", b, d)
		}
		img, _ := m.VisionForward(vp, pixels[b*3*S*S:(b+1)*3*S*S], 1)
		if d := maxAbsDiff(download(be, img), allImg[b*D:(b+1)*D]); !(d <= 1e-6) {
			t.Errorf("image %d alone differs by %g", b, d)
		}
	}
	if _, err := m.TextForward(tp, ids, n+1); err == nil {
		t.Error("batch larger than the plan: no error")
	}
	bad := append([]int32(nil), ids[:T]...)
	bad[0] = int32(cfg.Text.VocabSize)
	if _, err := m.TextForward(tp, bad, 1); err == nil {
		t.Error("id outside the vocabulary: no error")
	}
	if _, err := m.VisionForward(vp, pixels[:10], 1); err == nil {
		t.Error("short pixels: no error")
	}
}

// forward runs both towers on n rows and returns the image and text
// embeddings.
func forward(t testing.TB, m *Model, vp *VisionPlan, tp *TextPlan, ids []int32, pixels []float32, n int) (img, txt []float32) {
	t.Helper()
	ib, err := m.VisionForward(vp, pixels, n)
	if err != nil {
		t.Fatal(err)
	}
	img = download(m.Backend(), ib)
	tb, err := m.TextForward(tp, ids, n)
	if err != nil {
		t.Fatal(err)
	}
	return img, download(m.Backend(), tb)
}

// lossOf is the loss of a forward through training plans (no backward).
func lossOf(t testing.TB, m *Model, vp *VisionPlan, tp *TextPlan, ids []int32, pixels []float32, n int, o loss.Options) float64 {
	t.Helper()
	img, txt := forward(t, m, vp, tp, ids, pixels, n)
	r, err := infoNCE(m, o)(img, txt, n)
	if err != nil {
		t.Fatal(err)
	}
	return float64(r.Loss)
}

// fdCheck compares analytic gradients of the given parameters with central
// differences at a few entries: the largest-gradient one and random ones.
func fdCheck(t *testing.T, m *Model, params []*Param, lossFn func() float64, perParam int, seed uint64) {
	t.Helper()
	be := m.Backend()
	rng := rand.New(rand.NewPCG(seed, 5))
	// Embeddings have std 0.02 and pass a layer norm, so the loss curves
	// fast along them: h stays small, and Richardson extrapolation over h and
	// h/2 cancels the O(h²) term.
	const h = 1e-2
	worst, checked := 0.0, 0
	for _, p := range params {
		g := download(be, p.G)[:p.Len()]
		w := download(be, p.W)[:p.Len()]
		idx := []int{0}
		for i := range g {
			if math.Abs(float64(g[i])) > math.Abs(float64(g[idx[0]])) {
				idx[0] = i
			}
		}
		for range perParam - 1 {
			idx = append(idx, rng.IntN(len(g)))
		}
		central := func(i int, h float32) float64 {
			w0 := w[i]
			w[i] = w0 + h
			be.Upload(p.W, w)
			hi, up := lossFn(), w[i]
			w[i] = w0 - h
			be.Upload(p.W, w)
			lo, down := lossFn(), w[i]
			w[i] = w0
			be.Upload(p.W, w)
			return (hi - lo) / float64(up-down)
		}
		for _, i := range idx {
			fd := (4*central(i, h/2) - central(i, h)) / 3
			d := math.Abs(fd - float64(g[i]))
			worst = math.Max(worst, d/math.Max(math.Abs(fd), 1e-2))
			checked++
			if !(d <= 5e-4+2e-2*math.Abs(fd)) {
				t.Errorf("%s[%d]: analytic %.6g, finite difference %.6g", p.Name, i, g[i], fd)
			}
		}
	}
	t.Logf("%d entries of %d tensors: worst |analytic-fd| / max(|fd|, 1e-2) = %.2e", checked, len(params), worst)
}

// TestFiniteDifferenceFull checks the whole model's backward (both towers,
// every tensor, logit_scale included) against finite differences of the
// loss, with the positive mask and Matryoshka prefixes on, for each
// activation.
func TestFiniteDifferenceFull(t *testing.T) {
	for _, act := range []string{"quick_gelu", "gelu", "gelu_pytorch_tanh"} {
		t.Run(act, func(t *testing.T) {
			be := cpu.New()
			cfg := withAct(microConfig(), act)
			m, _ := New(cfg, be, 5)
			n := 4
			ids, pixels := randomBatch(cfg, n, 9)
			vp, tp := m.NewVisionPlan(n, true), m.NewTextPlan(n, true)
			o := loss.Options{ImageIDs: []int64{1, 2, 1, 3}, Dims: []int{8, 4}}
			m.ZeroGrads()
			step(t, m, vp, tp, ids, pixels, n, o)
			fdCheck(t, m, m.Params(), func() float64 { return lossOf(t, m, vp, tp, ids, pixels, n, o) }, 3, 1)
		})
	}
}

// TestGradAccumulates: two backward passes without ZeroGrads double the
// gradients; freezing a tower leaves its gradients nil.
func TestGradAccumulatesAndFreeze(t *testing.T) {
	be := cpu.New()
	cfg := microConfig()
	m, _ := New(cfg, be, 5)
	n := 3
	ids, pixels := randomBatch(cfg, n, 2)
	vp, tp := m.NewVisionPlan(n, true), m.NewTextPlan(n, true)
	m.ZeroGrads()
	step(t, m, vp, tp, ids, pixels, n, loss.Options{})
	once := map[string][]float32{}
	for _, p := range m.Params() {
		once[p.Name] = download(be, p.G)
	}
	step(t, m, vp, tp, ids, pixels, n, loss.Options{})
	for _, p := range m.Params() {
		g := download(be, p.G)
		for i := range g {
			if !(math.Abs(float64(g[i]-2*once[p.Name][i])) <= 1e-6+1e-5*math.Abs(float64(g[i]))) {
				t.Fatalf("%s[%d]: %v after two passes, %v after one", p.Name, i, g[i], once[p.Name][i])
			}
		}
	}
	if k := m.SetTrainable(false, NameHasPrefix("text_model.", "text_projection")); k == 0 {
		t.Fatal("nothing frozen")
	}
	m.ZeroGrads()
	step(t, m, vp, tp, ids, pixels, n, loss.Options{})
	for _, p := range m.Params() {
		frozen := strings.HasPrefix(p.Name, "text_")
		if frozen != (p.G == nil) {
			t.Errorf("%s: frozen %v but G nil = %v", p.Name, frozen, p.G == nil)
		}
		if !frozen && !(maxAbsDiff(download(be, p.G), once[p.Name]) <= 1e-6) {
			t.Errorf("%s: gradient changed by freezing the other tower", p.Name)
		}
	}
	// Frozen embeddings (the first block then skips its input gradient):
	// every other gradient is unchanged.
	m.SetTrainable(true, func(string) bool { return true })
	m.SetTrainable(false, NameHasPrefix("text_model.embeddings.", "vision_model.embeddings.", "vision_model.pre_layrnorm."))
	m.ZeroGrads()
	step(t, m, vp, tp, ids, pixels, n, loss.Options{})
	for _, p := range m.Params() {
		if p.G != nil && !(maxAbsDiff(download(be, p.G), once[p.Name]) <= 1e-6) {
			t.Errorf("%s: gradient changed by freezing the embeddings", p.Name)
		}
	}
	_, tr := m.NumParams()
	if tr == 0 {
		t.Error("no trainable parameters left")
	}
}

// TestVisionForwardImages: decoded bytes normalised on the backend give
// exactly the embeddings of host-normalised pixels, through inference and
// training plans, and the training plan's backward (which reads the patch
// rows) gives the same gradients.
func TestVisionForwardImages(t *testing.T) {
	be := cpu.New()
	cfg := microConfig()
	m, _ := New(cfg, be, 5)
	n, S := 3, cfg.Vision.ImageSize
	rng := rand.New(rand.NewPCG(8, 9))
	hwc := make([]uint8, n*S*S*3)
	for i := range hwc {
		hwc[i] = uint8(rng.IntN(256))
	}
	for _, pre := range []imageproc.Config{
		{Rescale: 1.0 / 255, Mean: imageproc.CLIPMean, Std: imageproc.CLIPStd},
		{Rescale: 1.0 / 255, Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}},
	} {
		per := 3 * S * S
		pixels := make([]float32, n*per)
		for i := range n {
			pre.Normalize(pixels[i*per:(i+1)*per], hwc[i*S*S*3:(i+1)*S*S*3])
		}
		lut := pre.LUT()
		for _, training := range []bool{false, true} {
			vp := m.NewVisionPlan(n, training)
			m.ZeroGrads()
			want, _ := m.VisionForward(vp, pixels, n)
			wantEmb := download(be, want)
			dEmb := be.Alloc(n * cfg.ProjectionDim)
			be.Upload(dEmb, wantEmb) // any gradient will do
			if training {
				if err := m.VisionBackward(vp, dEmb); err != nil {
					t.Fatal(err)
				}
			}
			wantGrad := download(be, m.patch.G)
			m.ZeroGrads()
			got, err := m.VisionForwardImages(vp, hwc, &lut, n)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(download(be, got), wantEmb); d != 0 {
				t.Errorf("mean %v, training %v: embeddings differ by %g", pre.Mean, training, d)
			}
			if training {
				if err := m.VisionBackward(vp, dEmb); err != nil {
					t.Fatal(err)
				}
				if d := maxAbsDiff(download(be, m.patch.G), wantGrad); d != 0 {
					t.Errorf("mean %v: patch embedding gradients differ by %g", pre.Mean, d)
				}
			}
		}
	}
	vp := m.NewVisionPlan(n, false)
	lut := imageproc.Config{Rescale: 1.0 / 255, Mean: imageproc.CLIPMean, Std: imageproc.CLIPStd}.LUT()
	if _, err := m.VisionForwardImages(vp, hwc[:10], &lut, 1); err == nil {
		t.Error("short image bytes: no error")
	}
}
