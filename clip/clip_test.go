package clip_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipline/clipline/clip"
	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/bpe"
	"github.com/clipline/clipline/internal/embed"
	"github.com/clipline/clipline/internal/embed/embedtest"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/stream"
)

var texts = []string{
	"a red circle on a blue background",
	"two green squares above a yellow triangle",
	"A small purple star in the corner.",
	"a large orange hexagon",
	"three blue circles in a row",
	strings.Repeat("a very long caption that will be truncated ", 20),
}

// testImages writes images of several sizes, formats and colour models and
// returns their paths and decoded forms.
func testImages(t *testing.T) ([]string, []image.Image) {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	var imgs []image.Image
	add := func(name string, m image.Image, enc func(*bytes.Buffer, image.Image) error) {
		var buf bytes.Buffer
		if err := enc(&buf, m); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		dec, _, err := image.Decode(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		paths, imgs = append(paths, p), append(imgs, dec)
	}
	pngEnc := func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) }
	jpgEnc := func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, &jpeg.Options{Quality: 90}) }
	for k, sz := range [][2]int{{40, 50}, {64, 48}, {32, 32}, {100, 37}} {
		m := image.NewRGBA(image.Rect(0, 0, sz[0], sz[1]))
		for y := range sz[1] {
			for x := range sz[0] {
				m.Set(x, y, color.RGBA{uint8(x * 255 / sz[0]), uint8(y * 255 / sz[1]), uint8(40 * k), 255})
			}
		}
		if k%2 == 0 {
			add(string(rune('a'+k))+".png", m, pngEnc)
		} else {
			add(string(rune('a'+k))+".jpg", m, jpgEnc)
		}
	}
	g := image.NewGray(image.Rect(0, 0, 45, 45))
	for i := range g.Pix {
		g.Pix[i] = uint8(i * 7)
	}
	add("grey.png", g, pngEnc)
	return paths, imgs
}

// TestMatchesEmbedStage: EncodeText, EncodeImage and EncodeImageFiles give
// the embed stage's vectors for the same texts and files, decoded and
// tokenized as the decode and tokenize stages do.
func TestMatchesEmbedStage(t *testing.T) {
	dir := modelWithVocab(t)
	paths, imgs := testImages(t)

	// The stage's input, prepared as decode and tokenize prepare it.
	pre, err := imageproc.ForModel(dir, 32)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := imageproc.NewPool(pre.Geometry, 0)
	if err != nil {
		t.Fatal(err)
	}
	pix := make([]byte, len(paths)*pool.OutLen())
	for _, err := range pool.Files(pix, paths) {
		if err != nil {
			t.Fatal(err)
		}
	}
	tok, err := bpe.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := embedtest.Stream{Side: 32, Context: 77, BatchRows: 2}
	for i := range paths {
		r := embedtest.Row{ID: paths[i], Pixels: pix[i*pool.OutLen() : (i+1)*pool.OutLen()]}
		if i < len(texts) {
			r.Captions = []string{texts[i]}
			r.Tokens = [][]int32{tok.Tokenize(texts[i], 77)}
		}
		s.Rows = append(s.Rows, r)
	}
	for i := len(paths); i < len(texts); i++ {
		s.Rows[0].Captions = append(s.Rows[0].Captions, texts[i])
		s.Rows[0].Tokens = append(s.Rows[0].Tokens, tok.Tokenize(texts[i], 77))
	}
	in, out := filepath.Join(t.TempDir(), "in.arrow"), filepath.Join(t.TempDir(), "out.arrow")
	s.Write(t, in)
	e, err := embed.Load(dir, cpu.New(), embed.Options{BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	r, err := stream.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := e.Run(r, embed.RunOptions{Out: out}); err != nil {
		t.Fatal(err)
	}
	stage := embedtest.Read(t, out)
	// Stage captions are in row order: row 0's then the others'.
	var stageTexts []string
	for _, c := range stage.Captions {
		stageTexts = append(stageTexts, c...)
	}

	m, err := clip.Load(dir, clip.WithBatchSize(3))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Dim() != 32 || m.ImageSize() != 32 || m.Dir() != dir {
		t.Errorf("Dim %d ImageSize %d Dir %s", m.Dim(), m.ImageSize(), m.Dir())
	}
	txt, err := m.EncodeText(stageTexts)
	if err != nil {
		t.Fatal(err)
	}
	if d := embedtest.MaxAbsDiff(t, flat(txt), stage.Caps.Values); !(d <= 1e-6) {
		t.Errorf("EncodeText differs from the embed stage by %g", d)
	}
	files, err := m.EncodeImageFiles(paths)
	if err != nil {
		t.Fatal(err)
	}
	if d := embedtest.MaxAbsDiff(t, flat(files), stage.Images.Values); !(d <= 1e-6) {
		t.Errorf("EncodeImageFiles differs from the embed stage by %g", d)
	}
	ims, err := m.EncodeImage(imgs)
	if err != nil {
		t.Fatal(err)
	}
	if d := embedtest.MaxAbsDiff(t, flat(ims), stage.Images.Values); !(d <= 1e-6) {
		t.Errorf("EncodeImage differs from the embed stage by %g", d)
	}
	for _, v := range append(txt, ims...) {
		if n := clip.Dot(v, v); !(math.Abs(float64(n)-1) <= 1e-5) {
			t.Errorf("norm² %g", n)
		}
	}

	// Matryoshka: the first 8 dimensions, renormalised.
	m8, err := clip.Load(dir, clip.WithDim(8))
	if err != nil {
		t.Fatal(err)
	}
	defer m8.Close()
	t8, err := m8.EncodeText(stageTexts[:2])
	if err != nil {
		t.Fatal(err)
	}
	raw := append(append([]float32(nil), txt[0]...), txt[1]...)
	if d := embedtest.MaxAbsDiff(t, flat(t8), embedtest.Normalized(raw, 32, 8)); !(d <= 1e-5) || m8.Dim() != 8 {
		t.Errorf("WithDim(8): dim %d, differs by %g", m8.Dim(), d)
	}
}

// modelWithVocab is a tiny random model whose vocabulary is learned from texts.
func modelWithVocab(t *testing.T) string { return embedtest.ModelWithVocab(t, texts) }

func flat(v [][]float32) []float32 {
	var out []float32
	for _, r := range v {
		out = append(out, r...)
	}
	return out
}

// TestGoldenImages: the reference images as image.Image give PyTorch's image
// embeddings normalised; a model without vocabulary files still encodes
// images and says why it cannot encode text.
func TestGoldenImages(t *testing.T) {
	ref := embedtest.LoadReference(t)
	m, err := clip.Load(embedtest.GoldenModel(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var imgs []image.Image
	px := ref.Side * ref.Side * 3
	for i := range ref.N {
		im := image.NewRGBA(image.Rect(0, 0, ref.Side, ref.Side))
		for k := range ref.Side * ref.Side {
			copy(im.Pix[4*k:4*k+3], ref.Pixels[i*px+3*k:i*px+3*k+3])
			im.Pix[4*k+3] = 255
		}
		imgs = append(imgs, im)
	}
	got, err := m.EncodeImage(imgs)
	if err != nil {
		t.Fatal(err)
	}
	if d := embedtest.MaxAbsDiff(t, flat(got), embedtest.Normalized(ref.ImageEmbeds, ref.Dim, 0)); !(d <= 1e-4) {
		t.Errorf("image embeddings differ from PyTorch's by %g", d)
	}
	if _, err := m.EncodeText([]string{"x"}); err == nil || !strings.Contains(err.Error(), "vocab.json") {
		t.Errorf("EncodeText without vocabulary: %v", err)
	}
	if _, err := m.EncodeImageFiles([]string{filepath.Join(t.TempDir(), "missing.png")}); err == nil || !strings.Contains(err.Error(), "missing.png") {
		t.Errorf("missing file: %v", err)
	}
	if v, err := m.EncodeImage(nil); err != nil || len(v) != 0 {
		t.Errorf("no images: %v, %v", v, err)
	}
	m.Close()
	if _, err := m.EncodeImage(imgs); err == nil {
		t.Error("EncodeImage after Close: no error")
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestLoadHubID: a hub id is downloaded (here from a local server standing in
// for the hub) into the cache and then works like a directory.
func TestLoadHubID(t *testing.T) {
	dir := modelWithVocab(t)
	var requests int
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		const prefix = "/test-org/tiny-clip/resolve/main/"
		name, ok := strings.CutPrefix(r.URL.Path, prefix)
		if !ok || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, filepath.Join(dir, name))
	}))
	defer ts.Close()
	t.Setenv("HF_ENDPOINT", ts.URL)
	cache := t.TempDir()
	m, err := clip.Load("test-org/tiny-clip", clip.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if !strings.HasPrefix(m.Dir(), cache) {
		t.Errorf("Dir %s not under the cache %s", m.Dir(), cache)
	}
	a, err := m.EncodeText(texts[:1])
	if err != nil {
		t.Fatal(err)
	}
	local, err := clip.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	b, _ := local.EncodeText(texts[:1])
	if d := embedtest.MaxAbsDiff(t, a[0], b[0]); d != 0 {
		t.Errorf("downloaded model differs by %g", d)
	}
	if requests == 0 {
		t.Error("no request reached the server")
	}
	if _, err := clip.Load("test-org/absent", clip.WithCacheDir(cache)); err == nil {
		t.Error("absent id: no error")
	}
	if _, err := clip.Load(dir, clip.WithBatchSize(0)); err == nil {
		t.Error("batch size 0: no error")
	}
	if _, err := clip.Load(dir, clip.WithDevice("tpu")); err == nil {
		t.Error("device tpu: no error")
	}
}

// TestTokensAndBytes: Tokenize then EncodeTokens is EncodeText, and
// EncodeImageBytes is EncodeImageFiles, bit for bit.
func TestTokensAndBytes(t *testing.T) {
	m, err := clip.Load(modelWithVocab(t), clip.WithBatchSize(4))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	want, err := m.EncodeText(texts)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := m.Tokenize(texts)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(texts)*m.ContextLength() || m.ContextLength() != 77 {
		t.Fatalf("%d ids for %d texts, context %d", len(ids), len(texts), m.ContextLength())
	}
	got, err := m.EncodeTokens(ids)
	if err != nil {
		t.Fatal(err)
	}
	same := func(what string, a, b []float32) {
		t.Helper()
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Errorf("%s: element %d is %g, want %g", what, i, a[i], b[i])
				return
			}
		}
	}
	same("EncodeTokens", flat(got), flat(want))
	if _, err := m.EncodeTokens(ids[:5]); err == nil {
		t.Error("EncodeTokens took 5 ids")
	}

	paths, _ := testImages(t)
	files, err := m.EncodeImageFiles(paths)
	if err != nil {
		t.Fatal(err)
	}
	var data [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b)
	}
	byts, err := m.EncodeImageBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	same("EncodeImageBytes", flat(byts), flat(files))
	_, err = m.EncodeImageBytes([][]byte{data[0], []byte("not an image")})
	if err == nil || !strings.Contains(err.Error(), "image 1") {
		t.Errorf("a text file as image 1: %v", err)
	}
}
