package cpu

import "github.com/clipline/clipline/internal/simd"

// Assembly in vec_amd64.s; n must be a multiple of 8.
//
//go:noescape
func expAVX2(dst, src *float32, n int)

//go:noescape
func quickGELUAVX2(out, in *float32, n int)

//go:noescape
func quickGELUBackwardAVX2(dIn, dOut, in *float32, n int)

var hasAVX2FMA = simd.Selected() >= simd.AVX2

// The *Vec functions process the longest multiple-of-8 prefix with AVX2
// and return its length; the caller finishes the tail in Go. Slices must
// be at least as long as the first.

func expVec(dst, src []float32) int {
	n := len(dst) &^ 7
	if !hasAVX2FMA || n == 0 {
		return 0
	}
	_ = src[n-1]
	expAVX2(&dst[0], &src[0], n)
	return n
}

func quickGELUVec(out, in []float32) int {
	n := len(out) &^ 7
	if !hasAVX2FMA || n == 0 {
		return 0
	}
	_ = in[n-1]
	quickGELUAVX2(&out[0], &in[0], n)
	return n
}

func quickGELUBackwardVec(dIn, dOut, in []float32) int {
	n := len(dIn) &^ 7
	if !hasAVX2FMA || n == 0 {
		return 0
	}
	_, _ = dOut[n-1], in[n-1]
	quickGELUBackwardAVX2(&dIn[0], &dOut[0], &in[0], n)
	return n
}
