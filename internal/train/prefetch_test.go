package train

import (
	"bytes"
	"testing"

	"github.com/clipline/clipline/internal/backend/cpu"
)

// What get returns is d's images, whether the prefetch guessed them, guessed
// others or was not asked; a chunk handed out is not overwritten by the
// gather of the next one.
func TestPrefetcher(t *testing.T) {
	d := synthData(3, 10, 1)
	per := tinySide * tinySide * 3
	p := newPrefetcher(cpu.New(), 4, per)
	defer p.free()
	want := func(imgs []int32) []byte {
		var b []byte
		for _, i := range imgs {
			b = append(b, d.Image(int(i))...)
		}
		return b
	}
	steps := []struct{ imgs, next []int32 }{
		{[]int32{0, 1, 2, 3}, []int32{4, 5, 6, 7}},
		{[]int32{4, 5, 6, 7}, []int32{8, 9}}, // guessed
		{[]int32{8, 9}, []int32{1, 2}},       // guessed
		{[]int32{3, 3, 0}, nil},              // guessed wrong
		{[]int32{9}, []int32{2, 0, 1}},       // nothing guessed
		{[]int32{2, 0, 1}, nil},              // guessed
	}
	for k, s := range steps {
		got := p.get(d, s.imgs, s.next)
		p.wait() // the next chunk's gather, into the other buffer, is done
		if !bytes.Equal(got, want(s.imgs)) {
			t.Fatalf("step %d: images %v: wrong pixels", k, s.imgs)
		}
	}
	if p.hits != 3 || p.misses != 3 {
		t.Errorf("%d hits, %d misses; want 3 and 3", p.hits, p.misses)
	}
}

// Training asks the prefetcher for every chunk it gathered: with GradCache
// (chunks asked for twice) and gradient accumulation, only an epoch's first
// chunk is gathered when asked for.
func TestPrefetchGuessesTheSchedule(t *testing.T) {
	base := tinyModelDir(t)
	c := testConfig(base, t.TempDir())
	c.Epochs = 2
	c.BatchSize = 6
	c.GradientAccumulationSteps = 2
	c.UseGradientCache, c.GradientCacheChunkSize = true, 4
	c.EvalStrategy = "no"
	tr := newTrainer(t, c, base, synthData(1, 8, 2), nil, "", nil) // 16 pairs: batches 6, 6, 4
	if _, err := tr.Run(); err != nil {
		t.Fatal(err)
	}
	// Per epoch: batches of 6 (chunks 4+2, twice) and one of 4 (one chunk).
	if want := 2 * (4 + 4 + 1); tr.fetch.hits+tr.fetch.misses != want {
		t.Errorf("%d chunks asked for, want %d", tr.fetch.hits+tr.fetch.misses, want)
	}
	if tr.fetch.misses != c.Epochs {
		t.Errorf("%d chunks gathered when asked for, want %d (one an epoch)", tr.fetch.misses, c.Epochs)
	}
}
