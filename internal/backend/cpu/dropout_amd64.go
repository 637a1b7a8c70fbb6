package cpu

import "github.com/clipline/clipline/internal/simd"

//go:noescape
func dropoutAVX512(mask *float32, n int, seed, start uint64, p, keep float32)

var hasAVX512DQ = simd.Selected() >= simd.AVX512

// dropoutVec fills the longest multiple-of-8 prefix of mask (element i
// drawing DropoutUniform(seed, start+i)) and returns its length.
func dropoutVec(mask []float32, p, keep float32, seed, start uint64) int {
	n := len(mask) &^ 7
	if !hasAVX512DQ || n == 0 {
		return 0
	}
	dropoutAVX512(&mask[0], n, seed, start, p, keep)
	return n
}
