package tokenize

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/bpe"
	"github.com/clipline/clipline/internal/spm/spmtest"
	"github.com/clipline/clipline/internal/texttok"
)

// TestContext: the context length from the flag or the model's config.json,
// bounded by its positions, and a vocabulary the model can embed.
func TestContext(t *testing.T) {
	v, err := bpe.Learn([]string{"a red circle", "a blue square"}, 530)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := v.Save(dir); err != nil {
		t.Fatal(err)
	}
	tok, err := bpe.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	check := func(n, want int, wantErr string) {
		t.Helper()
		got, err := Context(dir, tok, n)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("Context(%d): %d, %v; want an error with %q", n, got, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("Context(%d) = %d, %v; want %d", n, got, err, want)
		}
	}
	// Without config.json: 77 by default, any length from 2 up.
	check(0, bpe.DefaultContextLength, "")
	check(100, 100, "")
	check(1, 0, "--context 1: need at least 2")

	config := func(text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"text_config": {`+text+`}}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	config(`"max_position_embeddings": 20`)
	check(0, 20, "")
	check(8, 8, "")
	check(21, 0, "exceeds the model's text_config.max_position_embeddings 20")
	config(`"vocab_size": 100`)
	check(0, 0, "text_config.vocab_size is 100 but vocab.json has")
	config(`"hidden_act": "relu"`)
	check(0, 0, "hidden_act")
	config(`"hidden_act": "gelu"`) // LAION's activation is read
	check(0, bpe.DefaultContextLength, "")
}

// TestContextSiglip: a SentencePiece model's default context is SigLIP's
// 64, the config's max_position_embeddings otherwise, and its piece count
// is checked against text_config.vocab_size.
func TestContextSiglip(t *testing.T) {
	dir := spmtest.ModelDir(t, "unigram")
	tok, err := texttok.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := Context(dir, tok, 0); err != nil || n != texttok.SiglipContextLength {
		t.Errorf("no config.json: context %d, %v; want 64", n, err)
	}
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"text_config": {`+text+`}}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`"max_position_embeddings": 16`)
	if n, err := Context(dir, tok, 0); err != nil || n != 16 {
		t.Errorf("max_position_embeddings 16: context %d, %v", n, err)
	}
	write(`"vocab_size": 100`)
	if _, err := Context(dir, tok, 0); err == nil || !strings.Contains(err.Error(), "spiece.model has") {
		t.Errorf("vocab_size 100: %v", err)
	}
}
