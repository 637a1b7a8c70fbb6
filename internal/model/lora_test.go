package model

import (
	"github.com/clipline/clipline/internal/backend"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/loss"
)

var allTargets = []string{"q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2", "visual_projection", "text_projection"}

// loraModel is a micro model with adapters on every linear layer and B
// drawn at random (PEFT's zero B would make A's gradient vanish).
func loraModel(t *testing.T, dropout float32) *Model {
	t.Helper()
	return loraModelOn(t, cpu.New(), dropout, allTargets)
}

// loraModelOn is loraModel on backend be with adapters on targets.
func loraModelOn(t *testing.T, be backend.Backend, dropout float32, targets []string) *Model {
	t.Helper()
	m, err := New(microConfig(), be, 21)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ApplyLoRA(LoRAConfig{R: 2, Alpha: 3, Dropout: dropout, Targets: targets, Seed: 4}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(8, 8))
	for _, p := range m.Params() {
		if strings.HasSuffix(p.Name, ".lora_B.weight") {
			v := make([]float32, p.Len())
			for i := range v {
				v[i] = float32(0.2 * rng.NormFloat64())
			}
			be.Upload(p.W, v)
		}
	}
	return m
}

func loraParams(m *Model) []*Param {
	var ps []*Param
	for _, p := range m.Params() {
		if strings.Contains(p.Name, ".lora_") {
			ps = append(ps, p)
		}
	}
	return ps
}

func TestLoRAApply(t *testing.T) {
	be := cpu.New()
	cfg := microConfig()
	m, _ := New(cfg, be, 21)
	n := 3
	ids, pixels := randomBatch(cfg, n, 4)
	vp := m.NewVisionPlan(n, false)
	before, _ := m.VisionForward(vp, pixels, n)
	beforeImg := download(be, before)
	if err := m.ApplyLoRA(LoRAConfig{R: 4, Alpha: 8, Targets: []string{"q_proj", "v_proj", "visual_projection"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.VisionForward(vp, pixels, n); err == nil {
		t.Error("stale plan (created before ApplyLoRA): no error")
	}
	vp = m.NewVisionPlan(n, false)
	after, _ := m.VisionForward(vp, pixels, n)
	if d := maxAbsDiff(download(be, after), beforeImg); d != 0 {
		t.Errorf("B = 0 adapters changed the embeddings by %g", d)
	}
	got := 0
	for _, p := range m.Params() {
		isLoRA := strings.HasPrefix(p.Name, LoRAPrefix)
		if p.Trainable != isLoRA {
			t.Errorf("%s: trainable %v", p.Name, p.Trainable)
		}
		if strings.HasSuffix(p.Name, ".lora_A.weight") {
			got++
			bound := 1 / math.Sqrt(float64(p.Shape[1]))
			for _, x := range download(be, p.W) {
				if !(math.Abs(float64(x)) <= bound) {
					t.Fatalf("%s: %v outside ±%v", p.Name, x, bound)
				}
			}
		}
	}
	// q and v in 2+2 layers of both towers, plus visual_projection.
	if got != 9 {
		t.Errorf("%d adapters, want 9", got)
	}
	if m.Param(LoRAPrefix+"vision_model.encoder.layers.1.self_attn.q_proj.lora_A.weight") == nil ||
		m.Param(LoRAPrefix+"visual_projection.lora_B.weight") == nil {
		t.Error("PEFT-named adapters missing")
	}
	m.ZeroGrads()
	tp := m.NewTextPlan(n, true)
	vpt := m.NewVisionPlan(n, true)
	step(t, m, vpt, tp, ids, pixels, n, loss.Options{})
	for _, p := range m.Params() {
		if (p.G != nil) != p.Trainable {
			t.Errorf("%s: trainable %v, has gradient %v", p.Name, p.Trainable, p.G != nil)
		}
	}
	m2, _ := New(cfg, be, 21)
	for _, bad := range []LoRAConfig{{R: 0, Alpha: 1}, {R: 2, Alpha: 0}, {R: 2, Alpha: 1, Dropout: 1},
		{R: 2, Alpha: 1, Targets: []string{"patch_embedding"}}, {R: 2, Alpha: 1, Targets: []string{"proj"}}} {
		if err := m2.ApplyLoRA(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// TestLoRAGradients: adapter gradients (with dropout on: the backward
// replays the forward's masks) match finite differences, and base weights
// get none.
func TestLoRAGradients(t *testing.T) {
	for _, dropout := range []float32{0, 0.3} {
		m := loraModel(t, dropout)
		cfg := m.Config()
		n := 4
		ids, pixels := randomBatch(cfg, n, 6)
		vp, tp := m.NewVisionPlan(n, true), m.NewTextPlan(n, true)
		vp.SetDropout(true, 99)
		tp.SetDropout(true, 98)
		m.ZeroGrads()
		step(t, m, vp, tp, ids, pixels, n, loss.Options{})
		t.Logf("dropout %v:", dropout)
		fdCheck(t, m, loraParams(m), func() float64 { return lossOf(t, m, vp, tp, ids, pixels, n, loss.Options{}) }, 3, 2)
		if dropout > 0 {
			with := lossOf(t, m, vp, tp, ids, pixels, n, loss.Options{})
			vp.SetDropout(false, 0)
			tp.SetDropout(false, 0)
			without := lossOf(t, m, vp, tp, ids, pixels, n, loss.Options{})
			if !(math.Abs(with-without) >= 1e-4) {
				t.Errorf("dropout on and off give the same loss %v", with)
			}
		}
	}
}

// TestLoRAMergeAndAdapter: the merged checkpoint embeds like the LoRA model,
// and a saved adapter reloads onto the base model.
func TestLoRAMergeAndAdapter(t *testing.T) {
	m := loraModel(t, 0.1)
	cfg := m.Config()
	n := 3
	ids, pixels := randomBatch(cfg, n, 12)
	dir := checkMergeAndAdapter(t, m, 21, ids, pixels, n)
	raw, _ := os.ReadFile(filepath.Join(dir, "adapter", "adapter_config.json"))
	for _, want := range []string{`"peft_type": "LORA"`, `"r": 2`, `"lora_alpha": 3`, `"fc1"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("adapter_config.json lacks %s:\n%s", want, raw)
		}
	}
	lt := m.LoRATensors()
	if _, ok := lt["base_model.model.text_model.encoder.layers.0.mlp.fc2.lora_B.weight"]; !ok || len(lt) != 2*(2*2*6+2) {
		t.Errorf("%d adapter tensors", len(lt))
	}
}

// checkMergeAndAdapter checks that m (with LoRA, B random) embeds n rows
// unlike its base (New of m's config with seed), like its merged
// checkpoint (Save, Load), and exactly like the base with its saved adapter
// (SaveAdapter, LoadAdapter). It returns the directory holding merged/ and
// adapter/.
func checkMergeAndAdapter(t *testing.T, m *Model, seed uint64, ids []int32, pixels []float32, n int) string {
	t.Helper()
	be, cfg := m.Backend(), m.Config()
	embed := func(m *Model) ([]float32, []float32) {
		return forward(t, m, m.NewVisionPlan(n, false), m.NewTextPlan(n, false), ids, pixels, n)
	}
	img, txt := embed(m)
	base, _ := New(cfg, be, seed)
	if bImg, _ := embed(base); !(maxAbsDiff(img, bImg) >= 1e-3) {
		t.Fatal("adapters with random B barely change the embeddings; the test would prove nothing")
	}
	dir := t.TempDir()
	if err := m.Save(filepath.Join(dir, "merged")); err != nil {
		t.Fatal(err)
	}
	merged, err := Load(filepath.Join(dir, "merged"), be)
	if err != nil {
		t.Fatal(err)
	}
	mImg, mTxt := embed(merged)
	dI, dT := maxAbsDiff(mImg, img), maxAbsDiff(mTxt, txt)
	t.Logf("merged vs LoRA model: max |diff| image %.2e, text %.2e", dI, dT)
	if !(dI <= 1e-5 && dT <= 1e-5) {
		t.Errorf("merged model differs from the LoRA model: image %.2e text %.2e", dI, dT)
	}
	if err := m.SaveAdapter(filepath.Join(dir, "adapter"), "base"); err != nil {
		t.Fatal(err)
	}
	re, _ := New(cfg, be, seed)
	if err := re.LoadAdapter(filepath.Join(dir, "adapter")); err != nil {
		t.Fatal(err)
	}
	rImg, rTxt := embed(re)
	if maxAbsDiff(rImg, img) != 0 || maxAbsDiff(rTxt, txt) != 0 {
		t.Error("reloaded adapter embeds differently")
	}
	if err := re.ApplyLoRA(LoRAConfig{R: 1, Alpha: 1}); err == nil {
		t.Error("second ApplyLoRA accepted")
	}
	return dir
}

// TestDropoutReplay: an inference plan and a training plan with the same
// dropout seed give the same embeddings (GradCache's no-grad pass and its
// recomputation), and another seed gives other masks.
func TestDropoutReplay(t *testing.T) {
	m := loraModel(t, 0.3)
	be, cfg := m.Backend(), m.Config()
	n := 3
	ids, pixels := randomBatch(cfg, n, 13)
	run := func(training bool, seed uint64) []float32 {
		vp, tp := m.NewVisionPlan(n, training), m.NewTextPlan(n, training)
		vp.SetDropout(true, seed)
		tp.SetDropout(true, seed+1)
		ib, _ := m.VisionForward(vp, pixels, n)
		tb, _ := m.TextForward(tp, ids, n)
		return append(download(be, ib), download(be, tb)...)
	}
	a, b, c := run(false, 5), run(true, 5), run(true, 6)
	if d := maxAbsDiff(a, b); !(d <= 1e-6) {
		t.Errorf("same seed, inference vs training plan differ by %g", d)
	}
	if !(maxAbsDiff(b, c) >= 1e-4) {
		t.Error("different seeds give the same dropout")
	}
}

// trainingGrads runs one training step of m on n random pairs with dropout
// and returns the trainable parameters' gradients and the number of values
// the two training plans held.
func trainingGrads(t *testing.T, m *Model, n int) (map[string][]float32, int) {
	t.Helper()
	ids, pixels := randomBatch(m.Config(), n, 12)
	vp, tp := m.NewVisionPlan(n, true), m.NewTextPlan(n, true)
	defer vp.Free()
	defer tp.Free()
	vp.SetDropout(true, 5)
	tp.SetDropout(true, 6)
	m.ZeroGrads()
	step(t, m, vp, tp, ids, pixels, n, loss.Options{})
	g := map[string][]float32{}
	for _, p := range m.Params() {
		if p.Trainable {
			g[p.Name] = download(m.Backend(), p.G)
		}
	}
	held := 0
	for _, b := range append(vp.bufs, tp.bufs...) {
		held += b.Len()
	}
	return g, held
}

// TestRecomputeMLP: plans that recompute the MLP's hidden activations in
// the backward give exactly the gradients of plans that keep them, with
// adapters (and dropout) on fc1 and fc2 and with full fine-tuning, and hold
// less memory.
func TestRecomputeMLP(t *testing.T) {
	for _, full := range []bool{false, true} {
		m := loraModel(t, 0.3)
		if full {
			m.SetTrainable(true, func(string) bool { return true })
		}
		n := 3
		grads := func(recompute bool) (map[string][]float32, int) {
			m.RecomputeMLP(recompute)
			return trainingGrads(t, m, n)
		}
		keep, keptLen := grads(false)
		re, reLen := grads(true)
		for name, want := range keep {
			if d := maxAbsDiff(re[name], want); d != 0 {
				t.Errorf("full %v: %s differs by %g when recomputed", full, name, d)
			}
		}
		cfg := m.Config()
		saved := n * (cfg.Vision.SeqLen()*cfg.Vision.IntermediateSize*cfg.Vision.NumHiddenLayers +
			cfg.Text.MaxPositionEmbeddings*cfg.Text.IntermediateSize*cfg.Text.NumHiddenLayers)
		if keptLen-reLen != saved {
			t.Errorf("full %v: recomputing saves %d values, want %d", full, keptLen-reLen, saved)
		}
	}
}

// bf16CPU is the CPU backend announcing bf16 compute, so that plans keep
// the MLP's hidden activations packed.
type bf16CPU struct{ *cpu.Backend }

func (bf16CPU) BF16Activations() bool { return true }

// TestPackedMLP: on a backend that computes in bf16, training plans keep
// fc1's outputs as packed bf16 (half the memory). With frozen MLPs the
// gradients then differ from fp32's by the rounding of QuickGELU's
// derivative inputs only; with adapters on fc2 (whose gradient needs the
// fp32 values) the backward recomputes them and matches exactly.
func TestPackedMLP(t *testing.T) {
	for _, c := range []struct {
		targets []string
		exact   bool
	}{{DefaultLoRATargets, false}, {allTargets, true}} {
		n := 3
		grads := func(be backend.Backend) (map[string][]float32, int) {
			return trainingGrads(t, loraModelOn(t, be, 0.3, c.targets), n)
		}
		want, fullLen := grads(cpu.New())
		got, packedLen := grads(bf16CPU{cpu.New()})
		var num, den float64
		differ := false
		for name, w := range want {
			for i := range w {
				d := float64(got[name][i]) - float64(w[i])
				num, den = num+d*d, den+float64(w[i])*float64(w[i])
				differ = differ || d != 0
			}
		}
		rel := math.Sqrt(num / den)
		t.Logf("targets %v: packed vs fp32 gradients, normwise relative difference %.2e", c.targets, rel)
		if c.exact && differ {
			t.Errorf("targets %v: gradients differ (%.2e) though the backward recomputes fc1's output", c.targets, rel)
		}
		if !c.exact && (!differ || !(rel <= 1e-2)) {
			t.Errorf("targets %v: packed gradients differ by %.2e (want bf16 rounding: nonzero, at most 1e-2)", c.targets, rel)
		}
		cfg := microConfig()
		hidden := n * (cfg.Vision.SeqLen()*cfg.Vision.IntermediateSize*cfg.Vision.NumHiddenLayers +
			cfg.Text.MaxPositionEmbeddings*cfg.Text.IntermediateSize*cfg.Text.NumHiddenLayers)
		if saved := fullLen - packedLen; saved < hidden/2 {
			t.Errorf("targets %v: packing saves %d values, want at least %d", c.targets, saved, hidden/2)
		}
	}
}
