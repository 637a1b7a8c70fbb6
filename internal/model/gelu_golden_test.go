package model

import (
	"path/filepath"
	"testing"

	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/safetensors"
)

// TestGELUGolden compares CLIP models whose MLPs use gelu and
// gelu_pytorch_tanh with PyTorch (testdata/gelu-clip/make_reference.py):
// embeddings and logits within 1e-4, the loss within 1e-5, every gradient
// within 1e-4 relative. The same weights under quick_gelu miss the
// reference by far more, so the comparison tells the activations apart.
func TestGELUGolden(t *testing.T) {
	for _, act := range []string{"gelu", "gelu_pytorch_tanh"} {
		t.Run(act, func(t *testing.T) {
			dir := filepath.Join("..", "..", "testdata", "gelu-clip", act)
			be := cpu.New()
			m, err := Load(dir, be)
			if err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.Load(filepath.Join(dir, "reference.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			ts := f.Tensors
			ids, pixels, n := goldenInputs(t, ts)
			D := m.Config().ProjectionDim
			for _, training := range []bool{false, true} {
				img, txt := forward(t, m, m.NewVisionPlan(n, training), m.NewTextPlan(n, training), ids, pixels, n)
				dImg := maxAbsDiff(img, f32(t, ts, "image_embeds"))
				dTxt := maxAbsDiff(txt, f32(t, ts, "text_embeds"))
				dLog := maxAbsDiff(logitsPerImage(img, txt, n, D, m.LogitScale()), f32(t, ts, "logits_per_image"))
				t.Logf("training plan %v: max |diff| image_embeds %.2e, text_embeds %.2e, logits_per_image %.2e", training, dImg, dTxt, dLog)
				if !(dImg <= 1e-4 && dTxt <= 1e-4 && dLog <= 1e-4) {
					t.Errorf("parity beyond 1e-4: image %.2e text %.2e logits %.2e", dImg, dTxt, dLog)
				}
			}
			checkGradients(t, m, ts)

			// The same weights with quick_gelu.
			cfg := withAct(m.Config(), "quick_gelu")
			q, err := build(cfg, be)
			if err != nil {
				t.Fatal(err)
			}
			w, err := safetensors.Load(filepath.Join(dir, "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			if err := q.setTensors(dir, w.Tensors, ""); err != nil {
				t.Fatal(err)
			}
			img, _ := forward(t, q, q.NewVisionPlan(n, false), q.NewTextPlan(n, false), ids, pixels, n)
			d := maxAbsDiff(img, f32(t, ts, "image_embeds"))
			t.Logf("quick_gelu instead: max |diff| image_embeds %.2e", d)
			if !(d > 1e-2) {
				t.Errorf("quick_gelu's image_embeds are within %.2e of %s's reference: the test cannot tell the activations apart", d, act)
			}
		})
	}
}
