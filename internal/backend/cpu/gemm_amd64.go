package cpu

import (
	"fmt"

	xcpu "golang.org/x/sys/cpu"
)

// kernel6x16AVX2 is in gemm_amd64.s: C[6×16] += A·B from packed panels.
//
//go:noescape
func kernel6x16AVX2(kc int, a, b, c *float32, ldc int)

var avx2Kernel = microKernel{"avx2-6x16", 6, 16, func(kc int, a, b, c []float32, ldc int) {
	// The assembly does no bounds checks: check the extent it touches once
	// per call (cheap next to kc·96 FMAs).
	if kc <= 0 {
		return
	}
	if len(a) < 6*kc || len(b) < 16*kc || len(c) < 5*ldc+16 {
		panic(fmt.Sprintf("cpu: avx2 kernel: kc=%d ldc=%d with a %d, b %d, c %d", kc, ldc, len(a), len(b), len(c)))
	}
	kernel6x16AVX2(kc, &a[0], &b[0], &c[0], ldc)
}}

// kernel12x32AVX512 is in gemm_amd64.s: C[12×32] += A·B from packed panels.
//
//go:noescape
func kernel12x32AVX512(kc int, a, b, c *float32, ldc int)

var avx512Kernel = microKernel{"avx512-12x32", 12, 32, func(kc int, a, b, c []float32, ldc int) {
	if kc <= 0 {
		return
	}
	if len(a) < 12*kc || len(b) < 32*kc || len(c) < 11*ldc+32 {
		panic(fmt.Sprintf("cpu: avx512 kernel: kc=%d ldc=%d with a %d, b %d, c %d", kc, ldc, len(a), len(b), len(c)))
	}
	kernel12x32AVX512(kc, &a[0], &b[0], &c[0], ldc)
}}

var hasAVX512 = xcpu.X86.HasAVX512F

// availableKernels lists the micro-kernels this CPU (and OS) can run,
// slowest first. On one core of this project's Xeon the AVX-512 kernel runs
// about 1.7× the AVX2 one (2× and more inside the blocked GEMM).
func availableKernels() []*microKernel {
	ks := []*microKernel{&goKernel}
	if xcpu.X86.HasAVX2 && xcpu.X86.HasFMA {
		ks = append(ks, &avx2Kernel)
	}
	if hasAVX512 {
		ks = append(ks, &avx512Kernel)
	}
	return ks
}
