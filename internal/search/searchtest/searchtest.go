// Package searchtest makes the random unit vectors that the search and
// ranking tests, their benchmarks and the faiss comparison (scripts/bench)
// score.
package searchtest

import (
	"math"
	"math/rand/v2"
)

// RandomUnit returns n random unit vectors of dimension d (n×d, row-major),
// uniform on the sphere, drawn from rng.
func RandomUnit(rng *rand.Rand, n, d int) []float32 {
	x := make([]float32, n*d)
	for i := range n {
		row := x[i*d : (i+1)*d]
		var s float64
		for k := range row {
			v := rng.NormFloat64()
			row[k] = float32(v)
			s += v * v
		}
		inv := float32(1 / math.Sqrt(s))
		for k := range row {
			row[k] *= inv
		}
	}
	return x
}

// Seeded is RandomUnit from a generator seeded with seed.
func Seeded(seed uint64, n, d int) []float32 {
	return RandomUnit(rand.New(rand.NewPCG(seed, 0x5ea4c4)), n, d)
}
