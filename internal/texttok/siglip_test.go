package texttok

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/bpe"
	"github.com/clipline/clipline/internal/spm"
)

// spmTestdata is internal/spm's test models and goldens (testdata/gen.py).
var spmTestdata = filepath.Join("..", "spm", "testdata")

type siglipGolden struct {
	Text   string  `json:"text"`
	IDs    []int32 `json:"ids"`
	Length int     `json:"length"`
	Pad    int32   `json:"pad"`
}

func readSiglipGolden(t testing.TB) []siglipGolden {
	t.Helper()
	f, err := os.Open(filepath.Join(spmTestdata, "siglip_golden.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var gs []siglipGolden
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var g siglipGolden
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatalf("golden %s: %v", sc.Bytes(), err)
		}
		gs = append(gs, g)
	}
	if err := sc.Err(); err != nil || len(gs) < 100 {
		t.Fatalf("%d goldens, %v", len(gs), err)
	}
	return gs
}

// siglipDir is a model directory holding the SigLIP-layout test model as
// spiece.model.
func siglipDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(spmTestdata, "unigram.model"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, spm.File), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSiglipParity: rows equal transformers' SiglipTokenizer +
// SiglipProcessor(padding="max_length", truncation=True) on the test model
// (reimplemented over python3-sentencepiece in spm/testdata/gen.py): the
// lowercasing, punctuation removal, whitespace handling, special tokens,
// the end token, truncation with it kept and padding.
func TestSiglipParity(t *testing.T) {
	tok, err := Load(siglipDir(t))
	if err != nil {
		t.Fatal(err)
	}
	s, ok := tok.(*Siglip)
	if !ok {
		t.Fatalf("Load gave %T for a directory with spiece.model", tok)
	}
	gs := readSiglipGolden(t)
	texts := make([]string, len(gs))
	want := make([]int32, 0, len(gs)*SiglipContextLength)
	truncated := 0
	for i, g := range gs {
		if g.Length != SiglipContextLength || g.Pad != s.Pad() {
			t.Fatalf("golden %q: length %d pad %d; the tokenizer pads to %d with %d", g.Text, g.Length, g.Pad, SiglipContextLength, s.Pad())
		}
		row := append(slices.Clone(g.IDs), slices.Repeat([]int32{g.Pad}, g.Length-len(g.IDs))...)
		texts[i] = g.Text
		want = append(want, row...)
		if got := s.Tokenize(g.Text, g.Length); !slices.Equal(got, row) {
			t.Errorf("%q:\n got %v\nwant %v", g.Text, got, row)
		}
		if len(g.IDs) == g.Length && g.IDs[g.Length-1] == s.EOS() && len(s.Encode(g.Text))+1 > g.Length {
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
	sig := siglipDir(t)
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
	dir := siglipDir(t)
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
