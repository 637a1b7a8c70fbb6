package bpe

import (
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/cputime"
	"github.com/clipline/clipline/internal/sharedtest"
)

// benchTokenizer is the real CLIP vocabulary when ../shared is present, else
// one learned from the benchmark corpus (so the benchmark always runs).
func benchTokenizer(b *testing.B, texts []string) *Tokenizer {
	b.Helper()
	if _, err := os.Stat(sharedtest.Root() + "/clip/vocab.json"); err == nil {
		tok, _ := clipTokenizer(b)
		return tok
	}
	b.Log("../shared/clip absent: using a vocabulary learned from the corpus")
	v, err := Learn(texts, 1024)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := New(v)
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// BenchmarkTokenizeParallel tokenizes Flickr-like captions into 77-token
// rows on all GOMAXPROCS goroutines (run with -cpu 2 for the 2-core figure).
func BenchmarkTokenizeParallel(b *testing.B) {
	texts := flickrLike(20000, 1)
	tok := benchTokenizer(b, texts)
	var next atomic.Int64
	b.ResetTimer()
	cpu0 := cputime.Process()
	b.RunParallel(func(pb *testing.PB) {
		row := make([]int32, DefaultContextLength)
		local := next.Add(7919)
		for pb.Next() {
			i := next.Add(0) + local
			local++
			tok.TokenizeInto(row, texts[i%int64(len(texts))])
		}
	})
	reportRates(b, cputime.Process()-cpu0)
}

// reportRates reports wall-clock captions/s and, from CPU time, the cost
// of one caption and what that makes on 2 fully available cores (robust
// when other work shares the machine).
func reportRates(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "captions/s")
	if cpu > 0 {
		per := float64(cpu.Nanoseconds()) / float64(b.N)
		b.ReportMetric(per, "cpu-ns/caption")
		b.ReportMetric(2e9/per, "captions/s@2cores")
	}
}

// BenchmarkTokenizeColdCache measures one goroutine with the word cache
// emptied every 2000 captions, so first-seen words (the BPE merge loop)
// weigh much more than in a long run.
func BenchmarkTokenizeColdCache(b *testing.B) {
	texts := flickrLike(2000, 2)
	tok := benchTokenizer(b, texts)
	row := make([]int32, DefaultContextLength)
	b.ResetTimer()
	cpu0 := cputime.Process()
	for i := 0; i < b.N; i++ {
		if i%len(texts) == 0 {
			tok.cache.init()
		}
		tok.TokenizeInto(row, texts[i%len(texts)])
	}
	reportRates(b, cputime.Process()-cpu0)
}

// BenchmarkLoad reads the real CLIP vocabulary (the stage does it once).
func BenchmarkLoad(b *testing.B) {
	dir := sharedtest.Dir(b, "clip")
	for i := 0; i < b.N; i++ {
		if _, err := Load(dir); err != nil {
			b.Fatal(err)
		}
	}
}
