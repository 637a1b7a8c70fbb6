package spm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkEncode encodes testdata/corpus.txt's lines one at a time on one
// goroutine with unigram.model (nmt_nfkc), reporting tokens/s; the same
// work as scripts/bench/spm_speed.py does with python3-sentencepiece.
func BenchmarkEncode(b *testing.B) {
	m, err := Load(filepath.Join("testdata", "unigram.model"))
	if err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "corpus.txt"))
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var ids []int32
	tokens := 0
	b.ResetTimer()
	for range b.N {
		for _, l := range lines {
			ids = m.AppendEncode(ids[:0], l)
			tokens += len(ids)
		}
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
}
