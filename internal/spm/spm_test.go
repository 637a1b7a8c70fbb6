package spm

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

type golden struct {
	Model string  `json:"model"`
	Text  string  `json:"text"`
	IDs   []int32 `json:"ids"`
}

func readGolden(t testing.TB, name string, fn func(line []byte)) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		fn(sc.Bytes())
		n++
	}
	if err := sc.Err(); err != nil || n == 0 {
		t.Fatalf("%s: %d lines, %v", name, n, err)
	}
}

// TestParityWithSentencePiece: ids equal python3-sentencepiece's
// SentencePieceProcessor.encode (testdata/gen.py) on both test models, for
// the edge cases (unicode, whitespace runs, unknown characters, byte
// fallback, user-defined symbols, long text) and sampled captions.
func TestParityWithSentencePiece(t *testing.T) {
	models := map[string]*Model{}
	for _, name := range []string{"unigram", "flags"} {
		m, err := Load(filepath.Join("testdata", name+".model"))
		if err != nil {
			t.Fatal(err)
		}
		models[name] = m
	}
	bad := 0
	counts := map[string]int{}
	readGolden(t, "spm_golden.jsonl", func(line []byte) {
		var g golden
		if err := json.Unmarshal(line, &g); err != nil {
			t.Fatalf("golden line %s: %v", line, err)
		}
		m := models[g.Model]
		if m == nil {
			t.Fatalf("golden names model %q", g.Model)
		}
		counts[g.Model]++
		if got := m.Encode(g.Text); !slices.Equal(got, g.IDs) && !(len(got) == 0 && len(g.IDs) == 0) {
			bad++
			if bad <= 10 {
				t.Errorf("%s %q:\n got %v\nwant %v", g.Model, g.Text, got, g.IDs)
			}
		}
	})
	if bad > 0 {
		t.Errorf("%d texts differ", bad)
	}
	if counts["unigram"] < 100 || counts["flags"] < 100 {
		t.Errorf("golden cases per model: %v", counts)
	}
}
