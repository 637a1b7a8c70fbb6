package cpu

import xcpu "golang.org/x/sys/cpu"

// Assembly in vec_amd64.s; n must be a multiple of 8.
//
//go:noescape
func expAVX2(dst, src *float32, n int)

//go:noescape
func quickGELUAVX2(out, in *float32, n int)

//go:noescape
func quickGELUBackwardAVX2(dIn, dOut, in *float32, n int)

var hasAVX2FMA = xcpu.X86.HasAVX2 && xcpu.X86.HasFMA

func disableAsm() { hasAVX2FMA, hasAVX512DQ = false, false }

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

//go:noescape
func packTransAVX2(dst, src *float32, lds, w, kc8 int)

// packTransVec sets panel[p*w+j] = d[off+j*ls+p] for j < w and p below kc
// rounded down to a multiple of 8, and returns that bound (0 when w is not
// a multiple of 4 or AVX2 is missing: the caller does the rest).
func packTransVec(panel, d []float32, off, ls, w, kc int) int {
	kc8 := kc &^ 7
	if !hasAVX2FMA || w%4 != 0 || kc8 == 0 {
		return 0
	}
	_ = d[off+(w-1)*ls+kc8-1]
	_ = panel[kc8*w-1]
	packTransAVX2(&panel[0], &d[off], ls, w, kc8)
	return kc8
}
