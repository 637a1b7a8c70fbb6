//go:build amd64 && !amd64.v3

// GOAMD64=v3 lets the compiler fuse a·b+c in the Go kernel, which changes
// its scores: the recorded digests hold for v1 and v2.

package metrics

import (
	"hash/fnv"
	"math"
	"testing"

	"github.com/clipline/clipline/internal/simd"
)

// goldenRankDigests are rankDigest at commit a92a822, before the score
// kernels moved to internal/simd: the Go kernel's and the assembly
// kernels' (AVX2 and AVX-512 agree bit for bit).
var goldenRankDigests = map[string]uint64{"go": 0xf6b71f657efde1b, "asm": 0xdff5c1b76df30e2e}

// TestScoresUnchanged checks every level's scores, top-k lists and ranks,
// bit for bit, against the digests recorded before the kernels merged; with
// -tags purego only the Go level runs.
func TestScoresUnchanged(t *testing.T) {
	defer func(l simd.Level) { scoreLevel = l }(scoreLevel)
	for _, l := range simd.Available() {
		scoreLevel = l
		class := "asm"
		if l == simd.Go {
			class = "go"
		}
		if got, want := rankDigest(t), goldenRankDigests[class]; got != want {
			t.Errorf("%v: Rank outputs digest %#x, recorded %#x", l, got, want)
		}
	}
}

// rankDigest ranks random unit vectors at several sizes and block shapes
// and returns an FNV-1a digest of the top-k scores and items, the first
// relevant ranks and the metrics.
func rankDigest(t *testing.T) uint64 {
	h := fnv.New64a()
	put := func(u uint32) { h.Write([]byte{byte(u), byte(u >> 8), byte(u >> 16), byte(u >> 24)}) }
	for _, c := range []struct {
		n, per, d int
		opt       Options
	}{
		{1, 1, 1, Options{TopK: 3}},
		{50, 3, 7, Options{TopK: 5, Workers: 3, CaptionBlock: 12, ImageBlock: 32}},
		{300, 5, 64, Options{TopK: 10}},
		{257, 2, 33, Options{TopK: 4, Workers: 1}},
		{1000, 5, 128, Options{TopK: 10, Workers: 2}},
	} {
		res, err := Rank(benchInput(c.n, c.per, c.d), c.opt)
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range []Direction{res.T2I, res.I2T} {
			for _, v := range dir.Top.Scores {
				put(math.Float32bits(v))
			}
			for _, v := range dir.Top.Items {
				put(uint32(v))
			}
			for _, v := range dir.FirstRank {
				put(uint32(v))
			}
			for _, f := range []float64{dir.R1, dir.R5, dir.R10, dir.MRR, dir.NDCG10} {
				b := math.Float64bits(f)
				put(uint32(b))
				put(uint32(b >> 32))
			}
		}
	}
	return h.Sum64()
}
