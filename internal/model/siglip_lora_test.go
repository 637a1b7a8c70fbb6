package model

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/loss"
)

// siglipMicroConfig is a SigLIP small enough for finite differences over
// every tensor, the text head widening 12 to 16.
func siglipMicroConfig() Config {
	c := SigLIPBaseConfig()
	c.Text = TextConfig{HiddenSize: 12, IntermediateSize: 24, NumAttentionHeads: 2, NumHiddenLayers: 2,
		MaxPositionEmbeddings: 8, VocabSize: 40, HiddenAct: "gelu_pytorch_tanh", LayerNormEps: 1e-6, ProjectionSize: 16}
	c.Vision = VisionConfig{HiddenSize: 16, IntermediateSize: 32, NumAttentionHeads: 2, NumHiddenLayers: 2,
		ImageSize: 8, PatchSize: 4, NumChannels: 3, HiddenAct: "gelu_pytorch_tanh", LayerNormEps: 1e-6}
	c.ProjectionDim = 16
	return c
}

// siglipBatch is randomBatch with rows of random ids (SigLIP pools the
// last position whatever the ids).
func siglipBatch(cfg Config, n int, seed uint64) ([]int32, []float32) {
	ids, pixels := randomBatch(cfg, n, seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := range ids {
		ids[i] = int32(rng.IntN(cfg.Text.VocabSize))
	}
	return ids, pixels
}

// TestSiglipFiniteDifference checks every SigLIP tensor's gradient
// (logit_scale's with InfoNCE) against finite differences, and that the
// text tower attends both ways: changing the first token moves the
// embedding pooled at the last.
func TestSiglipFiniteDifference(t *testing.T) {
	be := cpu.New()
	cfg := siglipMicroConfig()
	m, err := New(cfg, be, 5)
	if err != nil {
		t.Fatal(err)
	}
	n := 4
	ids, pixels := siglipBatch(cfg, n, 9)
	vp, tp := m.NewVisionPlan(n, true), m.NewTextPlan(n, true)
	o := loss.Options{ImageIDs: []int64{1, 2, 1, 3}}
	m.ZeroGrads()
	step(t, m, vp, tp, ids, pixels, n, o)
	fdCheck(t, m, m.Params(), func() float64 { return lossOf(t, m, vp, tp, ids, pixels, n, o) }, 3, 1)

	_, txt := forward(t, m, vp, tp, ids, pixels, n)
	ids2 := slices.Clone(ids)
	ids2[0] = (ids2[0] + 1) % int32(cfg.Text.VocabSize)
	_, txt2 := forward(t, m, vp, tp, ids2, pixels, n)
	if d := maxAbsDiff(txt[:16], txt2[:16]); !(d > 1e-4) {
		t.Errorf("changing token 0 moved the last position's embedding by %.2e: attention looks causal", d)
	}
	if d := maxAbsDiff(txt[16:], txt2[16:]); d != 0 {
		t.Errorf("changing row 0 moved other rows by %.2e", d)
	}
}

// siglipTargets is every LoRA-able SigLIP linear: the blocks', the vision
// head's MLP and the text head.
var siglipTargets = []string{"q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2", "head"}

// TestSiglipLoRA: adapters go on the blocks, the vision head's MLP and the
// text head but not the head's nn.MultiheadAttention; their gradients
// (dropout on) match finite differences; the merged checkpoint embeds like
// the LoRA model, and the adapter written with full module paths reloads.
func TestSiglipLoRA(t *testing.T) {
	be := cpu.New()
	cfg := siglipMicroConfig()
	m, err := New(cfg, be, 21)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.ApplyLoRA(LoRAConfig{R: 2, Alpha: 3, Dropout: 0.2, Targets: siglipTargets, Seed: 4}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(8, 8))
	for _, p := range loraParams(m) {
		if strings.HasSuffix(p.Name, ".lora_B.weight") {
			v := make([]float32, p.Len())
			for i := range v {
				v[i] = float32(0.2 * rng.NormFloat64())
			}
			be.Upload(p.W, v)
		}
	}
	lt := m.LoRATensors()
	// 2 towers x 2 layers x 6 linears, the vision head's fc1 and fc2, text_model.head.
	if len(lt) != 2*(2*2*6+3) {
		t.Errorf("%d adapter tensors, want %d", len(lt), 2*(2*2*6+3))
	}
	for _, name := range []string{"vision_model.head.mlp.fc1", "text_model.head"} {
		if _, ok := lt[LoRAPrefix+name+".lora_A.weight"]; !ok {
			t.Errorf("no adapter on %s", name)
		}
	}
	for name := range lt {
		if strings.Contains(name, "head.attention") {
			t.Errorf("adapter on the head's MultiheadAttention: %s", name)
		}
	}
	n := 3
	ids, pixels := siglipBatch(cfg, n, 6)
	vp, tp := m.NewVisionPlan(n, true), m.NewTextPlan(n, true)
	vp.SetDropout(true, 99)
	tp.SetDropout(true, 98)
	m.ZeroGrads()
	step(t, m, vp, tp, ids, pixels, n, loss.Options{})
	fdCheck(t, m, loraParams(m), func() float64 { return lossOf(t, m, vp, tp, ids, pixels, n, loss.Options{}) }, 2, 2)
	for _, p := range m.Params() {
		if !isLoRAName(p.Name) && p.G != nil {
			t.Errorf("frozen %s has a gradient", p.Name)
		}
	}

	dir := checkMergeAndAdapter(t, m, 21, ids, pixels, n)
	raw, err := os.ReadFile(filepath.Join(dir, "adapter", "adapter_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pc peftConfig
	if err := json.Unmarshal(raw, &pc); err != nil {
		t.Fatal(err)
	}
	if len(pc.TargetModules) != len(lt)/2 || !slices.Contains(pc.TargetModules, "vision_model.encoder.layers.1.self_attn.out_proj") ||
		slices.Contains(pc.TargetModules, "out_proj") {
		t.Errorf("target_modules should list the %d adapted layers by full path: %v", len(lt)/2, pc.TargetModules)
	}
	fresh, _ := New(cfg, be, 1)
	if err := fresh.ApplyLoRA(LoRAConfig{R: 1, Alpha: 1, Targets: []string{"text_projection"}}); err == nil || !strings.Contains(err.Error(), "head (text_model.head)") {
		t.Errorf("CLIP-only target on SigLIP: %v", err)
	}
}

// TestSiglipSigmoidStep: TrainStep with the sigmoid loss accumulates
// logit_scale's and logit_bias's gradients (finite differences of the loss
// in each), scaled by GradScale like the rest.
func TestSiglipSigmoidStep(t *testing.T) {
	be := cpu.New()
	cfg := siglipMicroConfig()
	m, _ := New(cfg, be, 7)
	n := 4
	ids, pixels := siglipBatch(cfg, n, 3)
	vp, tp := m.NewVisionPlan(n, true), m.NewTextPlan(n, true)
	sigmoid := func(img, txt []float32, n int) (loss.Result, error) {
		return loss.Sigmoid(img, txt, n, cfg.ProjectionDim, loss.Options{LogitScale: m.LogitScale(), LogitBias: m.LogitBias()})
	}
	b := hostBatch(m, ids, pixels, n, loss.Options{})
	b.Loss, b.GradScale = sigmoid, 0.5
	s, err := m.NewTrainStep(vp, tp)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Free()
	m.ZeroGrads()
	if _, err := s.Run(b); err != nil {
		t.Fatal(err)
	}
	half := func() float64 {
		img, txt := forward(t, m, vp, tp, ids, pixels, n)
		r, err := sigmoid(img, txt, n)
		if err != nil {
			t.Fatal(err)
		}
		return 0.5 * float64(r.Loss)
	}
	fdCheck(t, m, []*Param{m.Param("logit_scale"), m.Param("logit_bias"), m.Param("vision_model.head.probe")}, half, 1, 3)
}
