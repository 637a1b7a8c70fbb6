package clip_test

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/clipline/clipline/clip"
	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/embed"
	"github.com/clipline/clipline/internal/spm/spmtest"
	"github.com/clipline/clipline/internal/texttok"
)

// siglipModel is testdata/siglip/model (a tiny random SiglipModel, vocab
// 256, 16 positions; its SiglipImageProcessor file) with a SentencePiece model of fewer pieces as its
// spiece.model.
func siglipModel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for src, dst := range map[string]string{
		filepath.Join("..", "testdata", "siglip", "model", "config.json"):              "config.json",
		filepath.Join("..", "testdata", "siglip", "model", "model.safetensors"):        "model.safetensors",
		filepath.Join("..", "testdata", "siglip", "model", "preprocessor_config.json"): "preprocessor_config.json",
	} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spmtest.Copy(t, "small", dir)
	return dir
}

// TestSiglipText: a SigLIP checkpoint's texts are tokenized with its
// spiece.model as the tokenize stage does (rows of max_position_embeddings
// ids, padded), and EncodeText equals the embed stage on those rows.
func TestSiglipText(t *testing.T) {
	dir := siglipModel(t)
	m, err := clip.Load(dir, clip.WithBatchSize(3))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.ContextLength() != 16 {
		t.Fatalf("context %d, want the config's 16", m.ContextLength())
	}
	tok, err := texttok.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := m.Tokenize(texts)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int32, len(texts)*16)
	tok.TokenizeAll(want, texts, 16, 1)
	if !slices.Equal(ids, want) {
		t.Fatalf("Tokenize:\n got %v\nwant %v", ids, want)
	}
	if _, ok := tok.(*texttok.Siglip); !ok {
		t.Fatalf("tokenizer %T, want SentencePiece", tok)
	}
	got, err := m.EncodeText(texts)
	if err != nil {
		t.Fatal(err)
	}
	e, err := embed.Load(dir, cpu.New(), embed.Options{BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	flat := make([]float32, len(texts)*e.Dim())
	if err := e.Texts(flat, want, 16, len(texts)); err != nil {
		t.Fatal(err)
	}
	D := e.Dim()
	for i, v := range got {
		row := flat[i*D : (i+1)*D]
		var norm float64
		for _, x := range row {
			norm += float64(x) * float64(x)
		}
		norm = math.Sqrt(norm) // embed's Texts are unnormalised; EncodeText's are unit vectors
		for j, x := range v {
			if d := math.Abs(float64(x) - float64(row[j])/norm); !(d <= 1e-5) {
				t.Fatalf("text %d dim %d: EncodeText %v, embed %v", i, j, x, float64(row[j])/norm)
			}
		}
	}
}
