package cpu

import xcpu "golang.org/x/sys/cpu"

//go:noescape
func dropoutAVX512(mask *float32, n int, seed, start uint64, p, keep float32)

var hasAVX512DQ = xcpu.X86.HasAVX512F && xcpu.X86.HasAVX512DQ

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
