package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/clipline/clipline/internal/spm"
	"github.com/clipline/clipline/internal/stream"
)

// TestSiglipModel: a model directory with spiece.model (and a SigLIP
// config.json) is tokenized with SentencePiece as SiglipProcessor does:
// rows of max_position_embeddings ids equal to the goldens of
// internal/spm/testdata/gen.py.
func TestSiglipModel(t *testing.T) {
	testdata := filepath.Join("..", "internal", "spm", "testdata")
	model := t.TempDir()
	data, err := os.ReadFile(filepath.Join(testdata, "unigram.model"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(model, spm.File), data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(testdata, "siglip_golden.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var texts []string
	var want [][]int32
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() && len(texts) < 60 {
		var g struct {
			Text   string  `json:"text"`
			IDs    []int32 `json:"ids"`
			Length int     `json:"length"`
			Pad    int32   `json:"pad"`
		}
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatal(err)
		}
		texts = append(texts, g.Text)
		want = append(want, append(g.IDs, slices.Repeat([]int32{g.Pad}, g.Length-len(g.IDs))...))
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.arrow"), filepath.Join(dir, "out.arrow")
	writeStream(t, in, [][]string{texts[:20], texts[20:]})
	runOK(t, "--model", model, "--in", in, "--out", out)
	r, err := stream.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Next() {
		t.Fatal(r.Err())
	}
	toks, err := stream.CaptionTokens(r.Batch())
	if err != nil {
		t.Fatal(err)
	}
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
