package embed_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/embed"
	"github.com/clipline/clipline/internal/model/modeltest"
)

// TestSiglipEmbeds: the embedder loads a SigLIP directory (testdata/siglip)
// like a CLIP's: decoded images normalised on the backend as its
// SiglipImageProcessor config says (mean and std 0.5), and token rows pooled
// at the last position, give the PyTorch reference's embeddings, unit
// length.
func TestSiglipEmbeds(t *testing.T) {
	r := modeltest.LoadSigLIP(t)
	// The model directory's preprocessor_config.json is SiglipImageProcessor's.
	e, err := embed.Load(filepath.Join(modeltest.SigLIPDir(), "model"), cpu.New(), embed.Options{BatchSize: 3}) // batches of 3 and 1
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if p := e.Preprocess(); p.Mean != [3]float32{0.5, 0.5, 0.5} || p.Std != [3]float32{0.5, 0.5, 0.5} {
		t.Fatalf("preprocessing %+v, want SiglipImageProcessor's mean and std 0.5", p)
	}
	D := e.Dim()
	px := r.Tensors["pixels_u8"]
	if px.DType != "U8" {
		t.Fatalf("pixels_u8 is %s", px.DType)
	}
	u8 := px.Data
	img, txt := make([]float32, r.N*D), make([]float32, r.N*D)
	if err := e.Images(img, u8, r.N); err != nil {
		t.Fatal(err)
	}
	if err := e.Texts(txt, r.IDs, len(r.IDs)/r.N, r.N); err != nil {
		t.Fatal(err)
	}
	unit := func(x []float32) []float32 {
		out := append([]float32(nil), x...)
		for i := range r.N {
			embed.L2Normalize(out[i*D : (i+1)*D])
		}
		return out
	}
	for _, c := range []struct {
		what      string
		got, want []float32
	}{{"image", img, unit(r.F32(t, "image_embeds"))}, {"text", txt, unit(r.F32(t, "text_embeds"))}} {
		var d float64
		for i := range c.got {
			d = math.Max(d, math.Abs(float64(c.got[i]-c.want[i])))
		}
		t.Logf("%s embeddings: max |diff| %.2e", c.what, d)
		if !(d <= 1e-5) {
			t.Errorf("%s embeddings differ from the reference by %.2e", c.what, d)
		}
	}
}
