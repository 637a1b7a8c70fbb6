package search

import (
	"fmt"
	"sync"
	"testing"

	"github.com/clipline/clipline/internal/cputime"
	"github.com/clipline/clipline/internal/search/searchtest"
)

var benchGallery = sync.OnceValue(func() *Gallery {
	const n, d = 200_000, 512
	data, width := Pack(searchtest.Seeded(1, n, d), d)
	g, err := NewGallery(data, width, n, d)
	if err != nil {
		panic(err)
	}
	return g
})

// BenchmarkSearch is the top 10 over 200,000 random unit vectors of
// dimension 512 (400 MB, beyond any cache), for one query at a time and a
// batch of 64, on GOMAXPROCS cores.
func BenchmarkSearch(b *testing.B) {
	g := benchGallery()
	for _, nq := range []int{1, 64} {
		queries := searchtest.Seeded(2, nq, g.Dim())
		b.Run(fmt.Sprintf("q%d", nq), func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				if _, err := g.Search(queries, 10, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((cputime.Process()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
			b.ReportMetric(float64(nq*b.N)/b.Elapsed().Seconds(), "queries/s")
			b.ReportMetric(float64(4*g.Len()*g.Dim()*b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}
