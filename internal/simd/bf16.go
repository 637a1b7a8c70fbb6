package simd

import (
	"fmt"
	"math"
)

// BF16Kernel is a GEMM micro-kernel on bf16 operands with fp32
// accumulation. Its panels hold k in pairs: element p of a line packs the
// line's values at k = 2p (low 16 bits) and 2p+1 (high 16 bits), each
// rounded to bf16 (see PackBF16Panels), so an A panel is [kp][MR] and a B
// panel [kp][NR] of uint32 ([kp][NR][2] bf16).
//
// The semantics are those of VDPBF16PS, which the Go reference (tileBF16Go)
// spells out: every lane starts from zero and, for each pair in order, adds
// the high halves' product and then the low halves' product (products of
// two bf16 values are exact in fp32, so each step rounds once), and only
// then meets C. The AVX2 kernel does exactly this with two FMAs per pair
// and so agrees with the reference bit for bit; VDPBF16PS flushes
// subnormal inputs and outputs, and may round its two steps differently on
// some CPUs, so it agrees within fp32 accumulation rounding.
type BF16Kernel struct {
	Name   string // "avx512bf16-12x32"
	Level  Level
	MR, NR int
	// Tile sets (accumulate false) or adds to (true) c[i*ldc+j] the sum
	// over pairs p < kp of a[p*MR+i]·b[p*NR+j], i < MR, j < NR.
	Tile func(kp int, a, b []uint32, c []float32, ldc int, accumulate bool)
}

var goBF16Kernel = BF16Kernel{Name: "go-bf16-4x4", Level: Go, MR: 4, NR: 4, Tile: tileBF16Go}

// BF16Available lists the levels whose bf16 kernel this CPU, OS and build
// can run, lowest first: AVX512 means AVX-512 F and BF16 (VDPBF16PS).
func BF16Available() []Level {
	var ls []Level
	for l := Go; l <= bestBF16; l++ {
		ls = append(ls, l)
	}
	return ls
}

// BF16KernelFor returns level l's bf16 kernel; l must be in BF16Available.
func BF16KernelFor(l Level) *BF16Kernel {
	if l < Go || l > bestBF16 {
		panic(fmt.Sprintf("simd: no %v bf16 kernel here", l))
	}
	if l == Go {
		return &goBF16Kernel
	}
	return asmBF16Kernels[l-1]
}

// SelectedBF16 is the bf16 kernel level to use with fp32 level Selected():
// the best one not above it (so CLIPLINE_CPU_KERNEL=avx2 also picks the
// AVX2 bf16 kernel on an avx512_bf16 CPU).
func SelectedBF16() Level { return min(selected, bestBF16) }

// NativeBF16 reports whether the CPU multiplies bf16 in hardware
// (avx512_bf16), where the bf16 mode is faster than fp32; elsewhere it
// runs on fp32 FMAs and is not.
func NativeBF16() bool { return bestBF16 == AVX512 }

// Features are the CPU features the kernel levels need, as
// golang.org/x/sys/cpu reports them (a parameter so the choice is
// testable on any CPU).
type Features struct {
	AVX2, FMA, AVX512F, AVX512DQ, AVX512BF16 bool
}

// Levels returns the best fp32 level and the best bf16 level for a CPU
// with features f (on a build with the assembly).
func (f Features) Levels() (fp32, bf16 Level) {
	switch {
	case f.AVX2 && f.FMA && f.AVX512F && f.AVX512DQ:
		fp32 = AVX512
	case f.AVX2 && f.FMA:
		fp32 = AVX2
	}
	bf16 = min(fp32, AVX2)
	if fp32 == AVX512 && f.AVX512BF16 {
		bf16 = AVX512
	}
	return fp32, bf16
}

// ToBF16 rounds f to bf16 (nearest even; NaN stays a quiet NaN) and
// returns its bits, as the CUDA backend's conversions do.
func ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 0x40
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// FromBF16 is the float32 value of bf16 bits h.
func FromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// bf16Pair packs x0 (low half) and x1 (high half).
func bf16Pair(x0, x1 float32) uint32 { return uint32(ToBF16(x0)) | uint32(ToBF16(x1))<<16 }

// BF16Depth is the number of pairs a panel of kc values holds.
func BF16Depth(kc int) int { return (kc + 1) / 2 }

// PackBF16Panels is PackPanels for the bf16 kernels: the same lines and
// panels, element (l, p0+2q) and (l, p0+2q+1) rounded to bf16 and packed
// into dst[panel*w*kp + q*w + j] (kp = BF16Depth(kc); a missing odd value
// and lines past n are zero). dst must hold RoundUp(n, w)·kp values.
func PackBF16Panels(dst []uint32, d []float32, ls, ps, l0, n, p0, kc, w int) {
	kp := BF16Depth(kc)
	even := kc &^ 1
	for q := 0; q*w < n; q++ {
		panel := dst[q*w*kp : (q+1)*w*kp]
		lines := min(w, n-q*w)
		base := l0 + q*w
		if ps == 1 {
			// Lines contiguous along p (A = in, B = Wᵀ): read each line
			// once, two values at a time.
			for j := range lines {
				src := d[(base+j)*ls+p0 : (base+j)*ls+p0+kc]
				for p := 0; p < even; p += 2 {
					panel[p/2*w+j] = bf16Pair(src[p], src[p+1])
				}
				if kc > even {
					panel[(kp-1)*w+j] = uint32(ToBF16(src[even]))
				}
			}
		} else {
			for p := 0; p < kc; p += 2 {
				out := panel[p/2*w : p/2*w+lines]
				r0 := d[(p0+p)*ps:]
				if p+1 < kc {
					r1 := d[(p0+p+1)*ps:]
					for j := range out {
						out[j] = bf16Pair(r0[(base+j)*ls], r1[(base+j)*ls])
					}
				} else {
					for j := range out {
						out[j] = uint32(ToBF16(r0[(base+j)*ls]))
					}
				}
			}
		}
		if lines < w {
			for p := range kp {
				clear(panel[p*w+lines : p*w+w])
			}
		}
	}
}

// tileBF16Go is the reference bf16 kernel, which defines the semantics
// (see BF16Kernel): per lane, hi·hi then lo·lo for each pair in order.
// Each product of two bf16 values is exact in fp32, so whether the
// compiler fuses a step into an FMA does not change it.
func tileBF16Go(kp int, a, b []uint32, c []float32, ldc int, accumulate bool) {
	const mr, nr = 4, 4
	var acc [mr][nr]float32
	a = a[:mr*kp]
	b = b[:nr*kp]
	for p := range kp {
		aa := a[p*mr : p*mr+mr : p*mr+mr]
		bb := b[p*nr : p*nr+nr : p*nr+nr]
		for i, av := range aa {
			ahi, alo := math.Float32frombits(av&0xffff0000), math.Float32frombits(av<<16)
			for j, bv := range bb {
				bhi, blo := math.Float32frombits(bv&0xffff0000), math.Float32frombits(bv<<16)
				acc[i][j] = float32(acc[i][j] + ahi*bhi)
				acc[i][j] = float32(acc[i][j] + alo*blo)
			}
		}
	}
	for i := range mr {
		store4(c[i*ldc:i*ldc+4:i*ldc+4], accumulate, acc[i][0], acc[i][1], acc[i][2], acc[i][3])
	}
}
