package metrics

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/clipline/clipline/internal/cputime"
	"github.com/clipline/clipline/internal/search/searchtest"
)

// benchInput is n random unit images with per distinct captions each, at
// dimension d.
func benchInput(n, per, d int) Input {
	rng := rand.New(rand.NewPCG(7, 8))
	caps := make([][]string, n)
	for i := range caps {
		for j := range per {
			caps[i] = append(caps[i], fmt.Sprintf("image %d caption %d", i, j))
		}
	}
	t2i, i2t := SingleStream(caps)
	return Input{Dim: d, Images: searchtest.RandomUnit(rng, n, d), Captions: searchtest.RandomUnit(rng, n*per, d), T2I: t2i, I2T: i2t}
}

// BenchmarkRankFlickrScale ranks Flickr30k-sized data both ways: 31,000
// images × 155,000 captions (5 each) at D=512, random unit vectors. Run with
// -benchtime 1x.
func BenchmarkRankFlickrScale(b *testing.B) {
	const n, per, d = 31000, 5, 512
	in := benchInput(n, per, d)
	var res Result
	cpu0 := cputime.Process()
	for b.Loop() {
		var err error
		res, err = Rank(in, Options{TopK: 10})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cputime.Process()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	flops := 2 * float64(n) * float64(n*per) * d
	b.ReportMetric(flops/b.Elapsed().Seconds()*float64(b.N)/1e9, "GFLOP/s")
	b.Logf("kernel %s; t2i R@1 %.5f R@10 %.5f MRR %.5f; i2t R@1 %.5f R@10 %.5f (chance: R@1 ~ 1/N)",
		res.Kernel, res.T2I.R1, res.T2I.R10, res.T2I.MRR, res.I2T.R1, res.I2T.R10)
}

// BenchmarkRankSmall is a quarter-scale (per side) version for profiling.
func BenchmarkRankSmall(b *testing.B) {
	const n, per, d = 8000, 5, 512
	in := benchInput(n, per, d)
	cpu0 := cputime.Process()
	for b.Loop() {
		if _, err := Rank(in, Options{TopK: 10}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cputime.Process()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(2*float64(n)*float64(n*per)*d/b.Elapsed().Seconds()*float64(b.N)/1e9, "GFLOP/s")
}
