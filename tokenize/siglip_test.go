package main

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/clipline/clipline/internal/spm/spmtest"
)

// TestSiglipModel: a model directory with spiece.model (and a SigLIP
// config.json) is tokenized with SentencePiece as SiglipProcessor does:
// rows of max_position_embeddings ids equal to the goldens of
// internal/spm/testdata/gen.py.
func TestSiglipModel(t *testing.T) {
	model := spmtest.ModelDir(t, "unigram")
	var texts []string
	var want [][]int32
	for _, g := range spmtest.SiglipGolden(t)[:60] {
		texts = append(texts, g.Text)
		want = append(want, g.Row)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.arrow"), filepath.Join(dir, "out.arrow")
	writeStream(t, in, [][]string{texts[:20], texts[20:]})
	runOK(t, "--model", model, "--in", in, "--out", out)
	toks := readTokens(t, out)
	if toks.Width != 64 {
		t.Fatalf("width %d, want SigLIP's 64", toks.Width)
	}
	for i, w := range want {
		row, c := 0, i
		if i >= 20 {
			row, c = 1, i-20
		}
		if got := toks.Item(row, c); !slices.Equal(got, w) {
			t.Errorf("%q:\n got %v\nwant %v", texts[i], got, w)
		}
	}
}
