package main

import (
	"fmt"
	"math"
)

// vconsts are the vector routines' constants, in table order: expf's (see
// internal/backend/cpu/expf.go), QuickGELU's 1.702, and the float32
// exponent bias for 2^n.
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

// genVec writes internal/backend/cpu's exp and QuickGELU routines.
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
