package texttok

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/bpe"
	"github.com/clipline/clipline/internal/spm"
	"github.com/clipline/clipline/internal/spm/spmtest"
)

// TestSiglipParity: rows equal transformers' SiglipTokenizer +
// SiglipProcessor(padding="max_length", truncation=True) on the test model
// (reimplemented over python3-sentencepiece in spm/testdata/gen.py): the
// lowercasing, punctuation removal, whitespace handling, special tokens,
// the end token, truncation with it kept and padding.
func TestSiglipParity(t *testing.T) {
	tok, err := Load(spmtest.ModelDir(t, "unigram"))
	if err != nil {
		t.Fatal(err)
	}
	s, ok := tok.(*Siglip)
	if !ok {
		t.Fatalf("Load gave %T for a directory with spiece.model", tok)
	}
	gs := spmtest.SiglipGolden(t)
	texts := make([]string, len(gs))
	want := make([]int32, 0, len(gs)*SiglipContextLength)
	truncated := 0
	for i, g := range gs {
		if len(g.Row) != SiglipContextLength || g.Pad != s.Pad() {
			t.Fatalf("golden %q: length %d pad %d; the tokenizer pads to %d with %d", g.Text, len(g.Row), g.Pad, SiglipContextLength, s.Pad())
		}
		texts[i] = g.Text
		want = append(want, g.Row...)
		if got := s.Tokenize(g.Text, len(g.Row)); !slices.Equal(got, g.Row) {
			t.Errorf("%q:\n got %v\nwant %v", g.Text, got, g.Row)
		}
		if len(s.Encode(g.Text))+1 > len(g.Row) {
			truncated++
		}
	}
	if truncated == 0 {
		t.Error("no golden text is truncated")
	}
	// All at once on several goroutines: the same rows, in order.
	got := make([]int32, len(want))
	n := s.TokenizeAll(got, texts, SiglipContextLength, 3)
	if !slices.Equal(got, want) {
		t.Error("TokenizeAll rows differ from Tokenize's")
	}
	if n != truncated {
		t.Errorf("TokenizeAll counted %d truncated, the goldens have %d", n, truncated)
	}
}

// TestLoadChooses: spiece.model wins; vocab.json + merges.txt give CLIP's
// BPE; neither is an error naming both.
func TestLoadChooses(t *testing.T) {
	sig := spmtest.ModelDir(t, "unigram")
	if !IsSentencePiece(sig) || !Has(sig) || !strings.HasSuffix(Files(sig)[0], spm.File) {
		t.Errorf("SigLIP dir: IsSentencePiece %v Has %v Files %v", IsSentencePiece(sig), Has(sig), Files(sig))
	}
	v, err := bpe.Learn([]string{"a red circle", "a blue square"}, 530)
	if err != nil {
		t.Fatal(err)
	}
	clip := t.TempDir()
	if err := v.Save(clip); err != nil {
		t.Fatal(err)
	}
	tok, err := Load(clip)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tok.(*bpe.Tokenizer); !ok || tok.DefaultContextLength() != 77 || IsSentencePiece(clip) {
		t.Errorf("CLIP dir gave %T (context %d)", tok, tok.DefaultContextLength())
	}
	_, err = Load(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), spm.File) || !strings.Contains(err.Error(), bpe.VocabFile) {
		t.Errorf("empty dir: %v", err)
	}
}

// TestTokenizerConfig: tokenizer_config.json's do_lower_case and tokens
// (strings or AddedToken objects) are used; a token the model lacks fails.
func TestTokenizerConfig(t *testing.T) {
	dir := spmtest.ModelDir(t, "unigram")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, TokenizerConfigFile), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lower, err := LoadSiglip(dir)
	if err != nil {
		t.Fatal(err)
	}
	write(`{"do_lower_case": false, "pad_token": {"content": "<pad>", "special": true}, "eos_token": "</s>"}`)
	s, err := LoadSiglip(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Pad() != 0 || s.EOS() != 1 {
		t.Errorf("pad %d eos %d, want 0 and 1", s.Pad(), s.EOS())
	}
	if row := s.Tokenize("a", 4); !slices.Equal(row[1:], []int32{1, 0, 0}) {
		t.Errorf("row %v: want eos then <pad> padding", row)
	}
	if slices.Equal(s.Encode("A Red Circle"), lower.Encode("A Red Circle")) {
		t.Error("do_lower_case false made no difference")
	}
	if !slices.Equal(s.Encode("a red circle"), lower.Encode("A Red Circle")) {
		t.Error("lowercasing is not what makes the difference")
	}
	write(`{"eos_token": "<eos>"}`)
	if _, err := LoadSiglip(dir); err == nil || !strings.Contains(err.Error(), "<eos>") {
		t.Errorf("unknown eos token: %v", err)
	}
}
