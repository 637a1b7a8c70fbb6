//go:build amd64 && !purego

package simd

import "fmt"

// The assembly in kernel_amd64.s does no bounds checks: the wrappers check
// the extent it touches once per call (cheap next to kc·MR·NR FMAs).

//go:noescape
func kernel6x16AVX2(kc int, a, b, c *float32, ldc int, accumulate bool)

//go:noescape
func kernel12x32AVX512(kc int, a, b, c *float32, ldc int, accumulate bool)

//go:noescape
func kernel8x32AVX512(kc int, a, b, c *float32, ldc int, accumulate bool)

//go:noescape
func kernel4x32AVX512(kc int, a, b, c *float32, ldc int, accumulate bool)

//go:noescape
func kernelBF16x4x16AVX2(kc int, a, b *uint32, c *float32, ldc int, accumulate bool)

//go:noescape
func kernelBF16x12x32AVX512(kc int, a, b *uint32, c *float32, ldc int, accumulate bool)

//go:noescape
func row16AVX2(x, b *float32, k int, out *float32)

//go:noescape
func row32AVX2(x, b *float32, k int, out *float32)

//go:noescape
func prefetchLines(src *float32, ls, n, kc int)

//go:noescape
func packTransAVX2(dst, src *float32, lds, w, kc8 int)

// asmKernels are the assembly kernels by level (AVX2 first). On one core
// of this project's Xeon the AVX-512 kernel runs about 1.7× the AVX2 one
// (2× and more inside the blocked GEMM).
var asmKernels = [...]*Kernel{
	asmKernel("avx2-6x16", AVX2, 6, 16, kernel6x16AVX2, row16AVX2),
	withShort(asmKernel("avx512-12x32", AVX512, 12, 32, kernel12x32AVX512, row32AVX2), 4,
		kernel4x32AVX512, kernel8x32AVX512),
}

// asmBF16Kernels are the bf16 kernels by level: AVX2 unpacks the pairs
// and runs two FMAs per pair (no faster than fp32: it exists so the mode
// runs, and is tested, everywhere), AVX512 is VDPBF16PS (avx512_bf16).
var asmBF16Kernels = [...]*BF16Kernel{
	{Name: "avx2-bf16-4x16", Level: AVX2, MR: 4, NR: 16,
		Tile: checkedTile("avx2-bf16-4x16", 4, 16, kernelBF16x4x16AVX2)},
	{Name: "avx512bf16-12x32", Level: AVX512, MR: 12, NR: 32,
		Tile: checkedTile("avx512bf16-12x32", 12, 32, kernelBF16x12x32AVX512)},
}

type asmTile = func(kc int, a, b, c *float32, ldc int, accumulate bool)

func asmKernel(name string, l Level, mr, nr int, tile asmTile, row func(x, b *float32, k int, out *float32)) *Kernel {
	k := &Kernel{Name: name, Level: l, MR: mr, NR: nr, Tile: checkedTile(name, mr, nr, tile)}
	k.Row = func(kc int, x, b, out []float32) {
		out = out[:nr]
		if kc <= 0 {
			clear(out)
			return
		}
		if len(x) < kc || len(b) < nr*kc {
			panic(fmt.Sprintf("simd: %s row kernel: kc=%d with x %d, b %d", name, kc, len(x), len(b)))
		}
		row(&x[0], &b[0], kc, &out[0])
	}
	return k
}

// withShort gives k the kernels of step, 2·step, ... rows as its Short.
func withShort(k *Kernel, step int, tiles ...asmTile) *Kernel {
	short := make([]func(kc int, a, b, c []float32, ldc int, accumulate bool), len(tiles))
	for i, t := range tiles {
		short[i] = checkedTile(fmt.Sprintf("%s's %d-row", k.Name, (i+1)*step), (i+1)*step, k.NR, t)
	}
	k.ShortStep = step
	k.Short = func(m, kc int, a, b, c []float32, ldc int, accumulate bool) {
		if m%step != 0 || m < step || m/step > len(short) {
			panic(fmt.Sprintf("simd: %s kernel has no %d-row tile", k.Name, m))
		}
		short[m/step-1](kc, a, b, c, ldc, accumulate)
	}
	return k
}

// checkedTile wraps an mr×nr assembly tile with the bounds checks it does
// not do.
// (E is float32 for the fp32 kernels, uint32 bf16 pairs for the bf16 ones,
// whose kc counts pairs.)
func checkedTile[E float32 | uint32](name string, mr, nr int, tile func(kc int, a, b *E, c *float32, ldc int, accumulate bool)) func(kc int, a, b []E, c []float32, ldc int, accumulate bool) {
	return func(kc int, a, b []E, c []float32, ldc int, accumulate bool) {
		if len(c) < (mr-1)*ldc+nr {
			panic(fmt.Sprintf("simd: %s kernel: ldc=%d with c %d", name, ldc, len(c)))
		}
		if kc <= 0 {
			if !accumulate {
				for i := range mr {
					clear(c[i*ldc : i*ldc+nr])
				}
			}
			return
		}
		if len(a) < mr*kc || len(b) < nr*kc {
			panic(fmt.Sprintf("simd: %s kernel: kc=%d with a %d, b %d", name, kc, len(a), len(b)))
		}
		tile(kc, &a[0], &b[0], &c[0], ldc, accumulate)
	}
}

// packTransVec sets panel[p*w+j] = d[off+j*ls+p] for j < w and p below kc
// rounded down to a multiple of 8, and returns that bound (0 when w is not
// a multiple of 4 or the selected level has no AVX2: the caller does the
// rest).
func packTransVec(panel, d []float32, off, ls, w, kc int) int {
	kc8 := kc &^ 7
	if selected < AVX2 || w%4 != 0 || kc8 == 0 {
		return 0
	}
	_ = d[off+(w-1)*ls+kc8-1]
	_ = panel[kc8*w-1]
	// The transpose reads w lines a few bytes at a time, a pattern the
	// hardware prefetcher does not follow: lines from memory packed ten
	// times slower than from cache before this prefetch.
	prefetchLines(&d[off], ls, w, kc8)
	packTransAVX2(&panel[0], &d[off], ls, w, kc8)
	return kc8
}
