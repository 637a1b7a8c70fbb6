// Package spmtest gives tests the SentencePiece models and goldens that
// internal/spm/testdata/gen.py made (spm_train and python3-sentencepiece).
package spmtest

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/clipline/clipline/internal/spm"
)

// Testdata is internal/spm/testdata.
func Testdata() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata")
}

// ModelDir returns a new directory holding testdata's NAME.model as
// spiece.model ("unigram": SigLIP's layout; "small": under 256 pieces).
func ModelDir(t testing.TB, name string) string {
	t.Helper()
	dir := t.TempDir()
	Copy(t, name, dir)
	return dir
}

// Copy writes testdata's NAME.model into dir as spiece.model.
func Copy(t testing.TB, name, dir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(Testdata(), name+".model"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, spm.File), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Siglip is one line of siglip_golden.jsonl: the text and its full row.
type Siglip struct {
	Text string
	Row  []int32 // padded to the context length
	Pad  int32
}

// SiglipGolden reads siglip_golden.jsonl: unigram.model through
// transformers' SiglipTokenizer and SiglipProcessor(padding="max_length").
func SiglipGolden(t testing.TB) []Siglip {
	t.Helper()
	f, err := os.Open(filepath.Join(Testdata(), "siglip_golden.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var gs []Siglip
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var g struct {
			Text   string  `json:"text"`
			IDs    []int32 `json:"ids"`
			Length int     `json:"length"`
			Pad    int32   `json:"pad"`
		}
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil || len(g.IDs) > g.Length {
			t.Fatalf("golden %s: %v", sc.Bytes(), err)
		}
		row := append(slices.Clone(g.IDs), slices.Repeat([]int32{g.Pad}, g.Length-len(g.IDs))...)
		gs = append(gs, Siglip{Text: g.Text, Row: row, Pad: g.Pad})
	}
	if err := sc.Err(); err != nil || len(gs) < 100 {
		t.Fatalf("siglip_golden.jsonl: %d lines, %v", len(gs), err)
	}
	return gs
}
