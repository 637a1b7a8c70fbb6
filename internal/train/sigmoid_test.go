package train

import (
	"math"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/config"
	"github.com/clipline/clipline/internal/loss"
	"github.com/clipline/clipline/internal/model"
)

// tinySigLIPDir saves a random tiny SigLIP (Hugging Face SiglipModel
// config) that takes synthData's images and tokens.
func tinySigLIPDir(t testing.TB) string {
	t.Helper()
	cfg, err := model.ParseConfig([]byte(`{
  "architectures": ["SiglipModel"], "model_type": "siglip",
  "text_config": {"model_type": "siglip_text_model", "hidden_size": 32, "intermediate_size": 64,
    "num_attention_heads": 2, "num_hidden_layers": 2, "max_position_embeddings": 16, "vocab_size": 512,
    "hidden_act": "quick_gelu", "layer_norm_eps": 1e-6, "projection_size": 32, "pad_token_id": 1, "eos_token_id": 1},
  "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
    "num_attention_heads": 2, "num_hidden_layers": 2, "image_size": 32, "patch_size": 8, "num_channels": 3,
    "hidden_act": "quick_gelu", "layer_norm_eps": 1e-6}}`))
	if err != nil {
		t.Fatal(err)
	}
	return modelDir(t, cfg)
}

func sigmoidConfig(base, out string) config.Config {
	c := testConfig(base, out)
	c.LossType = "sigmoid"
	c.LearnTemperature = true
	c.UseLoRA = false
	return c
}

// One micro-batch: the trainer's loss is loss.Sigmoid of the batch's
// embeddings at the model's logit_scale and logit_bias, with the positive
// mask, and the model's logit_scale and logit_bias gradients are its
// DLogitScale and DLogitBias times the micro-batch's share.
func TestSigmoidGradientsReachTheModel(t *testing.T) {
	base := tinySigLIPDir(t)
	data := synthData(5, 4, 2)
	tr := newTrainer(t, sigmoidConfig(base, t.TempDir()), base, data, nil, "", nil)
	m := tr.Model()
	if m.LogitScale() != loss.SigmoidInitLogitScale || m.LogitBias() != loss.SigmoidInitLogitBias {
		t.Errorf("new SigLIP: logit_scale %v, logit_bias %v; want SigLIP's %v and %v",
			m.LogitScale(), m.LogitBias(), loss.SigmoidInitLogitScale, loss.SigmoidInitLogitBias)
	}
	batch := []int32{0, 1, 2, 3, 4, 5, 6, 7}
	ids := make([]int64, len(batch))
	for i, p := range batch {
		ids[i] = int64(data.PairImage[p])
	}
	m.ZeroGrads()
	const share = 0.5
	got, err := tr.microBatch(batch, nil, share, 3)
	if err != nil {
		t.Fatal(err)
	}
	g := hostGrads(tr)
	img, txt, err := tr.ts.Forward(tr.batch(data, batch, nil, 3))
	if err != nil {
		t.Fatal(err)
	}
	want, err := loss.Sigmoid(img, txt, len(batch), tr.D, loss.Options{LogitScale: m.LogitScale(), LogitBias: m.LogitBias(), ImageIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	if got != float64(want.Loss) {
		t.Errorf("loss %v, loss.Sigmoid %v", got, want.Loss)
	}
	for name, w := range map[string]float32{"logit_scale": want.DLogitScale, "logit_bias": want.DLogitBias} {
		if len(g[name]) != 1 {
			t.Fatalf("%s not trained", name)
		}
		if !(math.Abs(float64(g[name][0]-share*w)) <= 1e-6*math.Abs(float64(w))) || w == 0 {
			t.Errorf("%s gradient %v, want %v × %v", name, g[name][0], share, w)
		}
	}
}

// CLIP has no logit_bias for the sigmoid loss: refused, naming the key.
func TestSigmoidNeedsLogitBias(t *testing.T) {
	base := tinyModelDir(t)
	c := sigmoidConfig(base, t.TempDir())
	_, err := New(Options{Config: c, ModelDir: base, Backend: testBackend(), Train: synthData(1, 4, 2)})
	if err == nil || !strings.Contains(err.Error(), "loss_type") || !strings.Contains(err.Error(), "logit_bias") || !strings.Contains(err.Error(), base) {
		t.Errorf("sigmoid loss on CLIP: %v", err)
	}
}
