package spm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/cputime"
)

// BenchmarkEncode encodes testdata/corpus.txt's lines one at a time on one
// goroutine with unigram.model (nmt_nfkc), reporting tokens per second and
// per CPU-second; the same
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
	cpu0 := cputime.Process()
	for range b.N {
		for _, l := range lines {
			ids = m.AppendEncode(ids[:0], l)
			tokens += len(ids)
		}
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
	// Per CPU-second too: on a shared machine wall time also measures the
	// neighbours (the encoder runs on one goroutine).
	if cpu := cputime.Process() - cpu0; cpu > 0 {
		b.ReportMetric(float64(tokens)/cpu.Seconds(), "tokens/cpu-s")
	}
}
