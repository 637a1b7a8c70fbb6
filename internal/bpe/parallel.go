package bpe

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// TokenizeAll writes the row of texts[i] (see TokenizeInto) to
// dst[i*contextLength:(i+1)*contextLength], spreading the texts over
// workers goroutines (0 or less: GOMAXPROCS). Rows stay in input order. It
// returns how many texts were truncated. dst must hold
// len(texts)*contextLength ids and contextLength must be at least 2.
func (t *Tokenizer) TokenizeAll(dst []int32, texts []string, contextLength, workers int) (truncated int) {
	if contextLength < 2 {
		panic("bpe: TokenizeAll needs a context of at least 2")
	}
	if len(dst) < len(texts)*contextLength {
		panic("bpe: TokenizeAll destination too small")
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	// Chunks of texts handed out by an atomic counter balance the load
	// without a goroutine per text.
	const chunk = 64
	chunks := (len(texts) + chunk - 1) / chunk
	workers = min(workers, chunks)
	if workers <= 1 {
		return t.tokenizeRange(dst, texts, contextLength, 0, len(texts))
	}
	var next atomic.Int64
	var total atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			n := 0
			for {
				c := int(next.Add(1)) - 1
				if c >= chunks {
					break
				}
				n += t.tokenizeRange(dst, texts, contextLength, c*chunk, min((c+1)*chunk, len(texts)))
			}
			total.Add(int64(n))
		})
	}
	wg.Wait()
	return int(total.Load())
}

func (t *Tokenizer) tokenizeRange(dst []int32, texts []string, ctx, from, to int) (truncated int) {
	for i := from; i < to; i++ {
		if t.TokenizeInto(dst[i*ctx:(i+1)*ctx], texts[i]) > ctx {
			truncated++
		}
	}
	return truncated
}
