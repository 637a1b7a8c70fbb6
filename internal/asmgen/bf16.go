package main

import (
	"fmt"
	"strings"
)

// The bf16 GEMM kernels of internal/simd read panels of k pairs: a uint32
// holds a line's bf16 values at k = 2p (low half) and 2p+1 (high half).
// Per lane and pair they add the high halves' product, then the low
// halves' (VDPBF16PS's order), so the AVX2 kernel, two FMAs per pair on
// exact products, reproduces the Go reference bit for bit.

// kernelBF16AVX2 writes the AVX2 bf16 kernel, 4×16: eight YMM
// accumulators, the B pair row unpacked into four (high halves masked, low
// halves shifted up), Y15 the mask 0xFFFF0000, and each row's A pair
// broadcast and unpacked into Y12 (low) and Y13 (high).
func kernelBF16AVX2(f *file) {
	const rows = 4
	f.text("kernelBF16x4x16AVX2", 41,
		"func kernelBF16x4x16AVX2(kc int, a, b *uint32, c *float32, ldc int, accumulate bool)",
		"",
		"C[0:4, 0:16] (+)= A·B for bf16 pair panels a (kc pairs × 4) and b (kc",
		"pairs × 16), fp32 accumulation: per pair, acc += a.hi·b.hi, then",
		"acc += a.lo·b.lo, each an FMA of exact products (VDPBF16PS's order).",
	)
	tileArgs(f)
	f.ins("VPCMPEQD Y15, Y15, Y15")
	f.ins("VPSLLD   $16, Y15, Y15")
	for i := range 2 * rows {
		f.ins("VXORPS %s, %s, %s", y(i), y(i), y(i))
	}
	f.ins("TESTQ CX, CX")
	f.ins("JEQ   store")
	f.label("loop")
	// Y8, Y9: B's low halves; Y10, Y11: its high halves.
	f.ins("VMOVDQU  (DI), Y8")
	f.ins("VMOVDQU  32(DI), Y9")
	f.ins("VPAND    Y8, Y15, Y10")
	f.ins("VPAND    Y9, Y15, Y11")
	f.ins("VPSLLD   $16, Y8, Y8")
	f.ins("VPSLLD   $16, Y9, Y9")
	for i := range rows {
		f.ins("VPBROADCASTD %d(SI), Y12", 4*i)
		f.ins("VPAND        Y12, Y15, Y13")
		f.ins("VPSLLD       $16, Y12, Y12")
		f.ins("VFMADD231PS  Y10, Y13, %s", y(2*i))
		f.ins("VFMADD231PS  Y11, Y13, %s", y(2*i+1))
		f.ins("VFMADD231PS  Y8, Y12, %s", y(2*i))
		f.ins("VFMADD231PS  Y9, Y12, %s", y(2*i+1))
	}
	f.ins("ADDQ $%d, SI", 4*rows)
	f.ins("ADDQ $64, DI")
	f.ins("DECQ CX")
	f.ins("JNE  loop")
	f.label("store")
	storeTile(f, rows, 32, y, "done")
	f.label("done")
	f.ins("VZEROUPPER")
	f.ins("RET")
}

// kernelBF16AVX512 writes the VDPBF16PS kernel, 12×32, on the AVX-512
// fp32 kernel's template: 24 ZMM accumulators, one pair row of B (32
// columns) in Z24 and Z25 per step, each row's A pair broadcast as one
// 32-bit value into four rotating registers.
func kernelBF16AVX512(f *file) {
	const rows = 12
	f.text("kernelBF16x12x32AVX512", 41,
		"func kernelBF16x12x32AVX512(kc int, a, b *uint32, c *float32, ldc int, accumulate bool)",
		"",
		"C[0:12, 0:32] (+)= A·B for bf16 pair panels a (kc pairs × 12) and b (kc",
		"pairs × 32), fp32 accumulation in VDPBF16PS (avx512_bf16). Go's assembler",
		"has no mnemonic for it: the instruction is written as its bytes.",
	)
	tileAVX512(f, rows, func(i, bc int) {
		f.ins("VPBROADCASTD %d(SI), %s", 4*i, z(bc))
		vdpbf16ps(f, 2*i, 24, bc)
		vdpbf16ps(f, 2*i+1, 25, bc)
	})
}

// vdpbf16psUsed records every (dst, src1, src2) register triple the
// generator has written, for the encoding test.
var vdpbf16psUsed = map[[3]int]bool{}

// vdpbf16ps writes VDPBF16PS zmm(dst), zmm(src1), zmm(src2) (Intel operand
// order: dst += pairwise dot products of src1 and src2) as bytes.
func vdpbf16ps(f *file, dst, src1, src2 int) {
	vdpbf16psUsed[[3]int{dst, src1, src2}] = true
	enc := encodeVDPBF16PS(dst, src1, src2)
	bs := make([]string, len(enc))
	for i, b := range enc {
		bs[i] = fmt.Sprintf("BYTE $0x%02x", b)
	}
	f.ins("%s // VDPBF16PS Z%d, Z%d, Z%d (Intel order)", strings.Join(bs, "; "), dst, src1, src2)
}

// encodeVDPBF16PS is EVEX.512.F3.0F38.W0 52 /r with register operands:
// ModRM.reg = dst (EVEX.R, R' its bits 3, 4), EVEX.vvvv and V' = src1,
// ModRM.rm = src2 (EVEX.B, X its bits 3, 4); R, X, B, R', vvvv and V' are
// stored inverted.
func encodeVDPBF16PS(dst, src1, src2 int) []byte {
	inv := func(reg, bit int, pos uint) byte {
		if reg&bit == 0 {
			return 1 << pos
		}
		return 0
	}
	p0 := inv(dst, 8, 7) | inv(src2, 16, 6) | inv(src2, 8, 5) | inv(dst, 16, 4) | 0b10 // map 0F38
	p1 := byte(^src1&15)<<3 | 1<<2 | 0b10                                              // W0, vvvv, pp = F3
	p2 := byte(0b10)<<5 | inv(src1, 16, 3)                                             // L'L = 512, V'
	modrm := byte(0xc0) | byte(dst&7)<<3 | byte(src2&7)
	return []byte{0x62, p0, p1, p2, 0x52, modrm}
}
