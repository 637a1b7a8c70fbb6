package model_test

import (
	"encoding/json"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/model"
	"github.com/clipline/clipline/internal/model/modeltest"
	"github.com/clipline/clipline/internal/safetensors"
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

// TestSiglipConfig: SiglipConfig's defaults, its keys written back under
// transformers' names (unknown ones kept), and clear errors.
func TestSiglipConfig(t *testing.T) {
	c, err := model.ParseConfig([]byte(`{"model_type": "siglip", "initializer_factor": 1.0,
		"text_config": {"vocab_size": 100, "pad_token_id": 1},
		"vision_config": {"patch_size": 32, "image_size": 64}}`))
	if err != nil {
		t.Fatal(err)
	}
	base := model.SigLIPBaseConfig()
	if !c.IsSigLIP() || c.Text.MaxPositionEmbeddings != 64 || c.Text.HiddenAct != "gelu_pytorch_tanh" ||
		c.Vision.LayerNormEps != 1e-6 || c.ProjectionDim != 768 || c.Text.ProjectionSize != 768 ||
		c.VisionSeqLen() != 4 || c.Text.VocabSize != 100 || base.Vision.PatchSize != 16 {
		t.Errorf("SigLIP defaults not applied: %+v", c)
	}
	raw, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	tc, vc := top["text_config"].(map[string]any), top["vision_config"].(map[string]any)
	if top["model_type"] != "siglip" || top["initializer_factor"] != 1.0 || tc["model_type"] != "siglip_text_model" ||
		vc["model_type"] != "siglip_vision_model" || tc["pad_token_id"] != 1.0 || tc["projection_size"] != 768.0 {
		t.Errorf("written config: %s", raw)
	}
	for _, k := range []string{"projection_dim", "logit_scale_init_value"} {
		if _, ok := top[k]; ok {
			t.Errorf("CLIP key %s written into a SiglipConfig: %s", k, raw)
		}
	}
	if arch := top["architectures"].([]any); len(arch) != 1 || arch[0] != "SiglipModel" {
		t.Errorf("architectures %v", arch)
	}
	again, err := model.ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	raw2, _ := again.MarshalJSON()
	if string(raw) != string(raw2) {
		t.Errorf("round trip changed the config:\n%s\n%s", raw, raw2)
	}
	for _, bad := range []struct{ json, want string }{
		{`{"model_type": "siglip", "text_config": {"projection_size": 512}}`, "projection_size 512 differs from vision_config.hidden_size 768"},
		{`{"model_type": "siglip", "vision_config": {"vision_use_head": false}}`, "vision_use_head"},
		{`{"model_type": "blip"}`, `model_type "blip" is not supported`},
	} {
		if _, err := model.ParseConfig([]byte(bad.json)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v, want one saying %q", bad.json, err, bad.want)
		}
	}
}

// TestSiglipSaveLoad: New, Save, Load gives the same tensors under
// transformers' names and shapes (logit_scale and logit_bias [1]), and the
// paper's initial logit_scale and logit_bias.
func TestSiglipSaveLoad(t *testing.T) {
	be := cpu.New()
	m := modeltest.LoadSigLIPModel(t, be)
	cfg := m.Config()
	fresh, err := model.New(cfg, be, 3)
	if err != nil {
		t.Fatal(err)
	}
	if s, b := fresh.LogitScale(), fresh.LogitBias(); math.Abs(float64(s)-math.Log(10)) > 1e-6 || b != -10 {
		t.Errorf("new SigLIP: logit_scale %v, logit_bias %v; want log 10, -10", s, b)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Load(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := safetensors.Load(filepath.Join(modeltest.SigLIPDir(), "model", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tensors) != len(ref.Tensors) {
		t.Errorf("saved %d tensors, the reference checkpoint has %d", len(f.Tensors), len(ref.Tensors))
	}
	for name, r := range ref.Tensors {
		got, ok := f.Tensors[name]
		if !ok {
			t.Errorf("saved checkpoint lacks %s", name)
			continue
		}
		a, _ := got.Float32()
		b, _ := r.Float32()
		if !slices.Equal(got.Shape, r.Shape) || !slices.Equal(a, b) || got.DType != "F32" {
			t.Errorf("%s: saved %s %v, reference %s %v (or values differ)", name, got.DType, got.Shape, r.DType, r.Shape)
		}
	}
	back, err := model.Load(dir, be)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Config().IsSigLIP() || back.LogitBias() != m.LogitBias() {
		t.Errorf("reloaded: siglip %v, logit_bias %v vs %v", back.Config().IsSigLIP(), back.LogitBias(), m.LogitBias())
	}
}
