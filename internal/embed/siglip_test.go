package embed_test

import (
	"math"
	"testing"

	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/embed"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/model/modeltest"
)

// TestSiglipEmbeds: the embedder runs a SigLIP (testdata/siglip) like a
// CLIP: decoded images normalised on the backend with SiglipImageProcessor's
// mean and std 0.5, and token rows pooled at the last position, give the
// PyTorch reference's embeddings, unit length.
func TestSiglipEmbeds(t *testing.T) {
	r := modeltest.LoadSigLIP(t)
	m := modeltest.LoadSigLIPModel(t, cpu.New())
	S := m.Config().Vision.ImageSize
	pre := imageproc.Config{Geometry: imageproc.Square(S), Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.5, 0.5, 0.5}, Rescale: 1.0 / 255}
	e, err := embed.New(m, pre, embed.Options{BatchSize: 3}) // batches of 3 and 1
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
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
