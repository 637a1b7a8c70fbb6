//go:build !amd64 || purego

package imageproc

const haveAVX2 = false

func filterRow(dst, src []byte, stride int, coeffs []int32, n int) {
	filterRowGo(dst, src, stride, coeffs, 0, n)
}
