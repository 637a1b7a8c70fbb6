//go:build !amd64 || purego

package simd

// Only the portable Go code exists off amd64 and with the purego tag.
const best, bestBF16 = Go, Go

var asmKernels = [...]*Kernel{}

var asmBF16Kernels = [...]*BF16Kernel{}

func packTransVec(panel, d []float32, off, ls, w, kc int) int { return 0 }
