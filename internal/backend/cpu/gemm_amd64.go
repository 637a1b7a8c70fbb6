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

func init() {
	if xcpu.X86.HasAVX2 && xcpu.X86.HasFMA {
		defaultKernel = &avx2Kernel
	}
}
