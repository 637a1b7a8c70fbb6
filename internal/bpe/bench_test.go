package bpe

import (
	"os"
	"sync/atomic"
	"testing"

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
	b.RunParallel(func(pb *testing.PB) {
		row := make([]int32, DefaultContextLength)
		local := next.Add(7919)
		for pb.Next() {
			i := next.Add(0) + local
			local++
			tok.TokenizeInto(row, texts[i%int64(len(texts))])
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "captions/s")
}

// BenchmarkTokenizeColdCache measures one goroutine with the word cache
// emptied before each pass over the corpus.
func BenchmarkTokenizeColdCache(b *testing.B) {
	texts := flickrLike(2000, 2)
	tok := benchTokenizer(b, texts)
	row := make([]int32, DefaultContextLength)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%len(texts) == 0 {
			tok.cache.init()
		}
		tok.TokenizeInto(row, texts[i%len(texts)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "captions/s")
}
