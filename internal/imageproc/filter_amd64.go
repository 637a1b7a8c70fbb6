//go:build amd64 && !purego

package imageproc

import "golang.org/x/sys/cpu"

//go:generate go run ../asmgen resample

// filterRowAVX2 is in resample_amd64.s (written by internal/asmgen).
//
//go:noescape
func filterRowAVX2(dst, src *byte, stride int, coeffs *int32, taps, n int)

var haveAVX2 = cpu.X86.HasAVX2

// filterRow is filterRowGo with the multiple-of-8 part in AVX2.
func filterRow(dst, src []byte, stride int, coeffs []int32, n int) {
	m := n &^ 7
	if !haveAVX2 || m == 0 || len(coeffs) == 0 {
		filterRowGo(dst, src, stride, coeffs, 0, n)
		return
	}
	// The assembly reads src[j*stride+i] for j < len(coeffs), i < m and
	// writes dst[:m]: check the bounds Go would.
	_ = src[(len(coeffs)-1)*stride+m-1]
	_ = dst[m-1]
	filterRowAVX2(&dst[0], &src[0], stride, &coeffs[0], len(coeffs), m)
	filterRowGo(dst, src, stride, coeffs, m, n)
}
