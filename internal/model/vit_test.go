package model

import (
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/backend/cpu"
)

// The larger OpenAI ViTs validate with their sequence lengths (class token
// plus (image/patch)² patches).
func TestLargerViTConfigs(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		seq  int
	}{{"ViT-B/16", ViTB16Config(), 197}, {"ViT-L/14", ViTL14Config(224), 257}, {"ViT-L/14-336", ViTL14Config(336), 577}} {
		if err := c.cfg.Validate(); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if got := c.cfg.VisionSeqLen(); got != c.seq {
			t.Errorf("%s: VisionSeqLen %d, want %d", c.name, got, c.seq)
		}
	}
}

// A 336-pixel model given 224-pixel images says so instead of reading past
// or short of its input (a narrow tower with ViT-L/14-336's geometry).
func TestVisionForwardWrongImageSize(t *testing.T) {
	cfg := TinyConfig()
	cfg.Vision.ImageSize, cfg.Vision.PatchSize, cfg.Vision.NumHiddenLayers = 336, 14, 1
	cfg.Vision.HiddenSize, cfg.Vision.IntermediateSize = 32, 64
	m, err := New(cfg, cpu.New(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	p := m.NewVisionPlan(1, false)
	defer p.Free()
	_, err = m.VisionForward(p, make([]float32, 3*224*224), 1)
	if err == nil || !strings.Contains(err.Error(), "3x336x336") || !strings.Contains(err.Error(), "150528 pixel values") {
		t.Fatalf("224-pixel image into a 336 model: err = %v", err)
	}
	if _, err := m.VisionForward(p, make([]float32, 3*336*336), 1); err != nil {
		t.Fatalf("336-pixel image: %v", err)
	}
}

// ViT-B/16 at full width builds its plan and embeds one image on the CPU
// backend (skipped with -short: ~150M random weights to draw).
func TestViTB16ForwardCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: full-width ViT-B/16")
	}
	be := cpu.New()
	m, err := New(ViTB16Config(), be, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	p := m.NewVisionPlan(1, false)
	defer p.Free()
	px := make([]float32, 3*224*224)
	for i := range px {
		px[i] = float32(i%97)/48 - 1
	}
	out, err := m.VisionForward(p, px, 1)
	if err != nil {
		t.Fatal(err)
	}
	emb := make([]float32, 512)
	be.Download(emb, out)
	var norm float64
	for _, v := range emb {
		norm += float64(v) * float64(v)
	}
	if !(norm > 0 && norm < 1e6) {
		t.Fatalf("embedding squared norm %g, want finite and non-zero", norm)
	}
}
