package main

import (
	"fmt"
	"math"
)

// vconsts are the vector routines' constants, in table order: expf's (see
// internal/backend/cpu/expf.go), QuickGELU's 1.702, the float32 exponent
// bias for 2^n, and those of gelu and gelu_pytorch_tanh.
var vconsts = []struct {
	name string
	bits uint32
}{
	{"one", f32(1)},
	{"half", f32(0.5)},
	{"lo", f32(-87.33654)},
	{"hi", f32(88.72283)},
	{"log2e", f32(1.44269504088896341)},
	{"ln2hi", f32(0.693359375)},
	{"ln2lo", f32(-2.12194440e-4)},
	{"p0", f32(1.9875691500e-4)},
	{"p1", f32(1.3981999507e-3)},
	{"p2", f32(8.3334519073e-3)},
	{"p3", f32(4.1665795894e-2)},
	{"p4", f32(1.6666665459e-1)},
	{"p5", f32(5.0000001201e-1)},
	{"gelu", f32(1.702)},
	{"neggelu", f32(-1.702)},
	{"bias", 127}, // the float32 exponent bias
	// The GELU routines' (internal/backend/cpu/gelu.go).
	{"absmask", 0x7fffffff},
	{"signmask", 0x80000000},
	{"cdfedge", f32(13.5)},
	{"halfinvsqrt2", f32(0.35355339059327376)},
	{"invsqrt2pi", f32(0.39894228040143268)},
	{"erfc0", f32(0.17087277)},
	{"erfc1", f32(-0.82215223)},
	{"erfc2", f32(1.48851587)},
	{"erfc3", f32(-1.13520398)},
	{"erfc4", f32(0.27886807)},
	{"erfc5", f32(-0.18628806)},
	{"erfc6", f32(0.09678418)},
	{"erfc7", f32(0.37409196)},
	{"erfc8", f32(1.00002368)},
	{"erfc9", f32(-1.26551223)},
	{"tanhc1", f32(1.5957691216057308)},
	{"tanhc2", f32(0.0713548162726009)},
	{"tanhd2", f32(3 * 0.0713548162726009)},
	{"tanhedge", f32(10)},
	{"negtanhedge", f32(-10)},
	{"neghalf", f32(-0.5)},
}

func f32(v float32) uint32 { return math.Float32bits(v) }

// vc is the 256-bit memory operand of the named constant.
func vc(name string) string {
	for i, c := range vconsts {
		if c.name == name {
			return fmt.Sprintf("vconst<>+%d(SB)", 32*i)
		}
	}
	panic("no constant " + name)
}

// genVec writes internal/backend/cpu's exp and activation routines.
func genVec(f *file) {
	f.line("")
	f.comment(
		"Vector float32 routines for AVX2+FMA, eight lanes at a time; n is a",
		"multiple of 8 (callers do the tail in Go). exp follows expf in expf.go",
		"(Cephes), with the input clamped to [-87.34, 88.72].",
	)
	f.line("")
	f.comment("Each constant is stored eight times so it can be a 256-bit memory operand.")
	for i, c := range vconsts {
		for lane := range 8 {
			note := ""
			if lane == 0 {
				note = " // " + c.name
			}
			f.line("DATA vconst<>+%d(SB)/4, $0x%08x%s", 32*i+4*lane, c.bits, note)
		}
	}
	f.line("GLOBL vconst<>(SB), RODATA|NOPTR, $%d", 32*len(vconsts))
	f.line("")
	f.comment(
		"EXP sets Y0 = e^Y0 in each lane: clamp, n = round(x·log2e), r = x - n·ln2",
		"(in two parts), e^r by the degree-6 polynomial, times 2^n built in the",
		"exponent bits. It uses Y1-Y3.",
	)
	f.define("EXP",
		"VMAXPS       "+vc("lo")+", Y0, Y0",
		"VMINPS       "+vc("hi")+", Y0, Y0",
		"VMOVUPS      "+vc("half")+", Y1",
		"VFMADD231PS  "+vc("log2e")+", Y0, Y1",
		"VROUNDPS     $1, Y1, Y1",
		"VFNMADD231PS "+vc("ln2hi")+", Y1, Y0",
		"VFNMADD231PS "+vc("ln2lo")+", Y1, Y0",
		"VMOVUPS      "+vc("p0")+", Y2",
		"VFMADD213PS  "+vc("p1")+", Y0, Y2",
		"VFMADD213PS  "+vc("p2")+", Y0, Y2",
		"VFMADD213PS  "+vc("p3")+", Y0, Y2",
		"VFMADD213PS  "+vc("p4")+", Y0, Y2",
		"VFMADD213PS  "+vc("p5")+", Y0, Y2",
		"VMULPS       Y0, Y0, Y3",
		"VFMADD213PS  Y0, Y3, Y2",
		"VADDPS       "+vc("one")+", Y2, Y2",
		"VCVTTPS2DQ   Y1, Y1",
		"VPADDD       "+vc("bias")+", Y1, Y1",
		"VPSLLD       $23, Y1, Y1",
		"VMULPS       Y1, Y2, Y0",
	)

	f.text("expAVX2", 24, "func expAVX2(dst, src *float32, n int)")
	f.ins("MOVQ dst+0(FP), DI")
	f.ins("MOVQ src+8(FP), SI")
	f.ins("MOVQ n+16(FP), CX")
	elementLoop(f, "exp", []string{"SI", "DI"}, func() {
		f.ins("VMOVUPS (SI), Y0")
		f.ins("EXP")
		f.ins("VMOVUPS Y0, (DI)")
	}, nil)

	f.text("quickGELUAVX2", 24,
		"func quickGELUAVX2(out, in *float32, n int)",
		"",
		"out = x / (1 + e^(-1.702x)).",
	)
	f.ins("MOVQ out+0(FP), DI")
	f.ins("MOVQ in+8(FP), SI")
	f.ins("MOVQ n+16(FP), CX")
	elementLoop(f, "g", []string{"SI", "DI"}, func() {
		geluDenominator(f)
		f.ins("VDIVPS Y0, Y4, Y4")
		f.ins("VMOVUPS Y4, (DI)")
	}, nil)

	f.text("quickGELUBackwardAVX2", 32,
		"func quickGELUBackwardAVX2(dIn, dOut, in *float32, n int)",
		"",
		"dIn += dOut·(s + 1.702·x·s·(1-s)) with s = 1 / (1 + e^(-1.702x)).",
	)
	f.ins("MOVQ dIn+0(FP), DI")
	f.ins("MOVQ dOut+8(FP), DX")
	f.ins("MOVQ in+16(FP), SI")
	f.ins("MOVQ n+24(FP), CX")
	elementLoop(f, "b", []string{"SI", "DI", "DX"}, func() {
		geluDenominator(f)
		f.ins("VMOVUPS %s, Y5", vc("one"))
		f.ins("VDIVPS Y0, Y5, Y5")
		f.ins("VMOVUPS %s, Y6", vc("one"))
		f.ins("VSUBPS Y5, Y6, Y6")
		f.ins("VMULPS %s, Y4, Y4", vc("gelu"))
		f.ins("VMULPS Y5, Y4, Y4")
		f.ins("VFMADD213PS Y5, Y6, Y4")
		f.ins("VMOVUPS (DI), Y7")
		f.ins("VFMADD231PS (DX), Y4, Y7")
		f.ins("VMOVUPS Y7, (DI)")
	}, nil)

	genGELU(f)
}

// genGELU writes gelu and gelu_pytorch_tanh, forward and backward, lane for
// lane the arithmetic of internal/backend/cpu/gelu.go (see there for why).
func genGELU(f *file) {
	f.text("geluAVX2", 24,
		"func geluAVX2(out, in *float32, n int)",
		"",
		"out = x·Φ(x).",
	)
	f.ins("MOVQ out+0(FP), DI")
	f.ins("MOVQ in+8(FP), SI")
	f.ins("MOVQ n+16(FP), CX")
	elementLoop(f, "ge", []string{"SI", "DI"}, func() {
		normCDF(f)
		f.ins("VMULPS Y4, Y1, Y1")
		f.ins("VMOVUPS Y1, (DI)")
	}, nil)

	f.text("geluBackwardAVX2", 32,
		"func geluBackwardAVX2(dIn, dOut, in *float32, n int)",
		"",
		"dIn += dOut·(Φ(x) + x·φ(x)).",
	)
	f.ins("MOVQ dIn+0(FP), DI")
	f.ins("MOVQ dOut+8(FP), DX")
	f.ins("MOVQ in+16(FP), SI")
	f.ins("MOVQ n+24(FP), CX")
	elementLoop(f, "gb", []string{"SI", "DI", "DX"}, func() {
		normCDF(f)
		// φ = e·(1 - l/2)/√(2π), 0 beyond the edge; g = x·φ + Φ.
		f.ins("VMOVUPS %s, Y6", vc("one"))
		f.ins("VFNMADD231PS %s, Y10, Y6", vc("half"))
		f.ins("VMULPS Y6, Y0, Y6")
		f.ins("VMULPS %s, Y6, Y6", vc("invsqrt2pi"))
		f.ins("VANDPS Y14, Y6, Y6")
		f.ins("VFMADD231PS Y6, Y4, Y1")
		f.ins("VMOVUPS (DI), Y7")
		f.ins("VFMADD231PS (DX), Y1, Y7")
		f.ins("VMOVUPS Y7, (DI)")
	}, nil)

	f.text("geluTanhAVX2", 24,
		"func geluTanhAVX2(out, in *float32, n int)",
		"",
		"out = x / (1 + e^(-v)), v = x·(c1 + c2·x²) = 2u.",
	)
	f.ins("MOVQ out+0(FP), DI")
	f.ins("MOVQ in+8(FP), SI")
	f.ins("MOVQ n+16(FP), CX")
	elementLoop(f, "gt", []string{"SI", "DI"}, func() {
		f.ins("VMOVUPS (SI), Y4")
		tanhExp(f)
		f.ins("VADDPS %s, Y0, Y0", vc("one"))
		f.ins("VDIVPS Y0, Y4, Y4")
		f.ins("VMOVUPS Y4, (DI)")
	}, nil)

	f.text("geluTanhBackwardAVX2", 32,
		"func geluTanhBackwardAVX2(dIn, dOut, in *float32, n int)",
		"",
		"dIn += dOut·(s + x·s²·e·v'(x)), e = e^(-v), s = 1/(1+e), x clamped to ±10.",
	)
	f.ins("MOVQ dIn+0(FP), DI")
	f.ins("MOVQ dOut+8(FP), DX")
	f.ins("MOVQ in+16(FP), SI")
	f.ins("MOVQ n+24(FP), CX")
	elementLoop(f, "gtb", []string{"SI", "DI", "DX"}, func() {
		f.ins("VMOVUPS (SI), Y4")
		f.ins("VMAXPS %s, Y4, Y4", vc("negtanhedge"))
		f.ins("VMINPS %s, Y4, Y4", vc("tanhedge"))
		tanhExp(f)
		f.ins("VMOVUPS %s, Y7", vc("one"))
		f.ins("VADDPS Y0, Y7, Y8")
		f.ins("VDIVPS Y8, Y7, Y7")
		f.ins("VMOVUPS %s, Y9", vc("tanhc1"))
		f.ins("VFMADD231PS %s, Y5, Y9", vc("tanhd2"))
		f.ins("VMULPS Y7, Y4, Y10")
		f.ins("VMULPS Y7, Y10, Y10")
		f.ins("VMULPS Y0, Y10, Y10")
		f.ins("VFMADD213PS Y7, Y9, Y10")
		f.ins("VMOVUPS (DI), Y11")
		f.ins("VFMADD231PS (DX), Y10, Y11")
		f.ins("VMOVUPS Y11, (DI)")
	}, nil)
}

// normCDF loads x from (SI) into Y4 and sets Y1 = Φ(x), keeping for the
// backward Y0 = e^(-h/2), Y10 = l (x² = h + l exactly) and Y14 = the
// |x| < edge mask. It uses Y0-Y3 and Y5-Y15.
func normCDF(f *file) {
	f.ins("VMOVUPS (SI), Y4")
	f.ins("VANDPS %s, Y4, Y13", vc("absmask"))
	f.ins("VMINPS %s, Y13, Y5", vc("cdfedge"))
	// t = 1/(1 + ax/(2√2))
	f.ins("VMOVUPS %s, Y6", vc("one"))
	f.ins("VFMADD231PS %s, Y5, Y6", vc("halfinvsqrt2"))
	f.ins("VMOVUPS %s, Y7", vc("one"))
	f.ins("VDIVPS Y6, Y7, Y7")
	// c(t) by Horner's rule
	f.ins("VMOVUPS %s, Y8", vc("erfc0"))
	for k := 1; k <= 9; k++ {
		f.ins("VFMADD213PS %s, Y7, Y8", vc("erfc"+itoa(k)))
	}
	// h = ax², l = ax² - h (exact, by FMA); Y11 = e^(c - l/2)
	f.ins("VMULPS Y5, Y5, Y9")
	f.ins("VMOVAPS Y9, Y10")
	f.ins("VFMSUB231PS Y5, Y5, Y10")
	f.ins("VFNMADD231PS %s, Y10, Y8", vc("half"))
	f.ins("VMOVAPS Y8, Y0")
	f.ins("EXP")
	f.ins("VMOVAPS Y0, Y11")
	// Y0 = e^(-h/2); q = t/2·e^(-h/2)·e^(c - l/2) = Φ(-|x|), 0 beyond the edge
	f.ins("VMULPS %s, Y9, Y0", vc("neghalf"))
	f.ins("EXP")
	f.ins("VMULPS %s, Y7, Y12", vc("half"))
	f.ins("VMULPS Y0, Y12, Y12")
	f.ins("VMULPS Y11, Y12, Y12")
	f.ins("VCMPPS $1, %s, Y13, Y14", vc("cdfedge"))
	f.ins("VANDPS Y14, Y12, Y12")
	// Φ = q where x is negative, else 1 - q
	f.ins("VMOVUPS %s, Y15", vc("one"))
	f.ins("VSUBPS Y12, Y15, Y15")
	f.ins("VBLENDVPS Y4, Y12, Y15, Y1")
}

// tanhExp sets, for x in Y4, Y5 = x² and Y0 = e^(-v), v = x·(c1 + c2·x²).
// It uses Y0-Y3 and Y6.
func tanhExp(f *file) {
	f.ins("VMULPS Y4, Y4, Y5")
	f.ins("VMOVUPS %s, Y6", vc("tanhc1"))
	f.ins("VFMADD231PS %s, Y5, Y6", vc("tanhc2"))
	f.ins("VMULPS Y4, Y6, Y0")
	f.ins("VXORPS %s, Y0, Y0", vc("signmask"))
	f.ins("EXP")
}

// geluDenominator loads x from (SI) into Y4 and sets Y0 = 1 + e^(-1.702x).
func geluDenominator(f *file) {
	f.ins("VMOVUPS (SI), Y4")
	f.ins("VMULPS %s, Y4, Y0", vc("neggelu"))
	f.ins("EXP")
	f.ins("VADDPS %s, Y0, Y0", vc("one"))
}

// elementLoop writes a loop over CX/8 blocks of eight lanes: body, then
// each pointer register in ptrs advanced by 32 bytes; after the loop, after
// (if not nil) and the return. Labels are prefix+"loop" and prefix+"done".
func elementLoop(f *file, prefix string, ptrs []string, body, after func()) {
	f.ins("SHRQ $3, CX")
	f.ins("JEQ  %sdone", prefix)
	f.label(prefix + "loop")
	body()
	for _, p := range ptrs {
		f.ins("ADDQ $32, %s", p)
	}
	f.ins("DECQ CX")
	f.ins("JNE  %sloop", prefix)
	f.label(prefix + "done")
	if after != nil {
		after()
	}
	f.ins("VZEROUPPER")
	f.ins("RET")
}
