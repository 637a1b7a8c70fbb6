package main

import (
	"fmt"
	"strings"
)

// genLN writes internal/backend/cpu's layer-norm and softmax row kernels.
func genLN(f *file) {
	f.line("")
	f.comment("Layer-norm row kernels for AVX2+FMA; n is a multiple of 8.")
	f.line("")
	f.comment(
		"HSUM leaves the sum of the eight lanes of Y in the low lane of X (T is a",
		"scratch XMM register).",
	)
	f.define("HSUM(Y, X, T)",
		"VEXTRACTF128 $1, Y, T",
		"VADDPS       T, X, X",
		"VMOVHLPS     X, X, T",
		"VADDPS       T, X, X",
		"VMOVSHDUP    X, T",
		"VADDSS       T, X, X",
	)
	hsumTo := func(ret string) func() {
		return func() {
			f.ins("HSUM(Y0, X0, X1)")
			f.ins("MOVSS X0, %s", ret)
		}
	}

	f.text("sumAVX2", 20, "func sumAVX2(x *float32, n int) float32")
	f.ins("MOVQ x+0(FP), SI")
	f.ins("MOVQ n+8(FP), CX")
	f.ins("VXORPS Y0, Y0, Y0")
	elementLoop(f, "s", []string{"SI"}, func() {
		f.ins("VADDPS (SI), Y0, Y0")
	}, hsumTo("ret+16(FP)"))

	f.text("sumSqDevAVX2", 28,
		"func sumSqDevAVX2(x *float32, n int, m float32) float32",
		"Σ (x-m)².",
	)
	f.ins("MOVQ x+0(FP), SI")
	f.ins("MOVQ n+8(FP), CX")
	f.ins("VBROADCASTSS m+16(FP), Y2")
	f.ins("VXORPS Y0, Y0, Y0")
	elementLoop(f, "q", []string{"SI"}, func() {
		f.ins("VMOVUPS     (SI), Y1")
		f.ins("VSUBPS      Y2, Y1, Y1")
		f.ins("VFMADD231PS Y1, Y1, Y0")
	}, hsumTo("ret+24(FP)"))

	f.text("lnNormAVX2", 48,
		"func lnNormAVX2(out, x, w, b *float32, n int, m, r float32)",
		"out = (x-m)·r·w + b.",
	)
	f.ins("MOVQ out+0(FP), DI")
	f.ins("MOVQ x+8(FP), SI")
	f.ins("MOVQ w+16(FP), R8")
	f.ins("MOVQ b+24(FP), R9")
	f.ins("MOVQ n+32(FP), CX")
	f.ins("VBROADCASTSS m+40(FP), Y6")
	f.ins("VBROADCASTSS r+44(FP), Y7")
	elementLoop(f, "n", []string{"SI", "DI", "R8", "R9"}, func() {
		f.ins("VMOVUPS     (SI), Y0")
		f.ins("VSUBPS      Y6, Y0, Y0")
		f.ins("VMULPS      Y7, Y0, Y0")
		f.ins("VMOVUPS     (R9), Y1")
		f.ins("VFMADD231PS (R8), Y0, Y1")
		f.ins("VMOVUPS     Y1, (DI)")
	}, nil)

	f.text("lnBackDotsAVX2", 48,
		"func lnBackDotsAVX2(x, dout, w *float32, n int, m, r float32) (sumD, sumDN float32)",
		"sumD = Σ w·dout, sumDN = Σ w·dout·(x-m)·r.",
	)
	f.ins("MOVQ x+0(FP), SI")
	f.ins("MOVQ dout+8(FP), DX")
	f.ins("MOVQ w+16(FP), R8")
	f.ins("MOVQ n+24(FP), CX")
	f.ins("VBROADCASTSS m+32(FP), Y6")
	f.ins("VBROADCASTSS r+36(FP), Y7")
	f.ins("VXORPS Y0, Y0, Y0")
	f.ins("VXORPS Y1, Y1, Y1")
	elementLoop(f, "d", []string{"SI", "DX", "R8"}, func() {
		f.ins("VMOVUPS     (SI), Y2")
		f.ins("VSUBPS      Y6, Y2, Y2")
		f.ins("VMULPS      Y7, Y2, Y2")
		f.ins("VMOVUPS     (DX), Y3")
		f.ins("VMULPS      (R8), Y3, Y3")
		f.ins("VADDPS      Y3, Y0, Y0")
		f.ins("VFMADD231PS Y3, Y2, Y1")
	}, func() {
		f.ins("HSUM(Y0, X0, X2)")
		f.ins("HSUM(Y1, X1, X2)")
		f.ins("MOVSS X0, sumD+40(FP)")
		f.ins("MOVSS X1, sumDN+44(FP)")
	})

	lnBackApply(f, "lnBackApplyAVX2", true, true, true)
	lnBackApply(f, "lnBackInAVX2", true, false, false)
	lnBackApply(f, "lnBackDWAVX2", false, true, false)

	f.line("")
	f.comment("Softmax row helpers (attention); n is a multiple of 8.")

	f.text("maxAVX2", 20, "func maxAVX2(x *float32, n int) float32 (n >= 8)")
	f.ins("MOVQ x+0(FP), SI")
	f.ins("MOVQ n+8(FP), CX")
	f.ins("VMOVUPS (SI), Y0")
	f.ins("ADDQ $32, SI")
	f.ins("SHRQ $3, CX")
	f.ins("DECQ CX")
	f.ins("JEQ  mdone")
	f.label("mloop")
	f.ins("VMAXPS (SI), Y0, Y0")
	f.ins("ADDQ   $32, SI")
	f.ins("DECQ   CX")
	f.ins("JNE    mloop")
	f.label("mdone")
	f.ins("VEXTRACTF128 $1, Y0, X1")
	f.ins("VMAXPS       X1, X0, X0")
	f.ins("VMOVHLPS     X0, X0, X1")
	f.ins("VMAXPS       X1, X0, X0")
	f.ins("VMOVSHDUP    X0, X1")
	f.ins("VMAXSS       X1, X0, X0")
	f.ins("MOVSS X0, ret+16(FP)")
	f.ins("VZEROUPPER")
	f.ins("RET")

	f.text("shiftScaleAVX2", 24,
		"func shiftScaleAVX2(x *float32, n int, m, a float32)",
		"x = (x - m)·a.",
	)
	f.ins("MOVQ x+0(FP), SI")
	f.ins("MOVQ n+8(FP), CX")
	f.ins("VBROADCASTSS m+16(FP), Y6")
	f.ins("VBROADCASTSS a+20(FP), Y7")
	elementLoop(f, "ss", []string{"SI"}, func() {
		f.ins("VMOVUPS (SI), Y0")
		f.ins("VSUBPS  Y6, Y0, Y0")
		f.ins("VMULPS  Y7, Y0, Y0")
		f.ins("VMOVUPS Y0, (SI)")
	}, nil)

	f.text("dotAVX2", 28, "func dotAVX2(a, b *float32, n int) float32")
	f.ins("MOVQ a+0(FP), SI")
	f.ins("MOVQ b+8(FP), DI")
	f.ins("MOVQ n+16(FP), CX")
	f.ins("VXORPS Y0, Y0, Y0")
	elementLoop(f, "dt", []string{"SI", "DI"}, func() {
		f.ins("VMOVUPS     (SI), Y1")
		f.ins("VFMADD231PS (DI), Y1, Y0")
	}, hsumTo("ret+24(FP)"))

	f.text("softmaxBackAVX2", 32,
		"func softmaxBackAVX2(d, p *float32, n int, s, a float32)",
		"d = p·(d - s)·a.",
	)
	f.ins("MOVQ d+0(FP), DI")
	f.ins("MOVQ p+8(FP), SI")
	f.ins("MOVQ n+16(FP), CX")
	f.ins("VBROADCASTSS s+24(FP), Y6")
	f.ins("VBROADCASTSS a+28(FP), Y7")
	elementLoop(f, "sb", []string{"SI", "DI"}, func() {
		f.ins("VMOVUPS (DI), Y0")
		f.ins("VSUBPS  Y6, Y0, Y0")
		f.ins("VMULPS  (SI), Y0, Y0")
		f.ins("VMULPS  Y7, Y0, Y0")
		f.ins("VMOVUPS Y0, (DI)")
	}, nil)
}

// lnBackApply writes a layer-norm backward row kernel that updates the
// chosen outputs, with xn = (x-m)·r: dB += dout; dW += xn·dout;
// dIn += (w·dout - sumD - xn·sumDN)·r. Each output has its own kernel
// rather than a scratch row standing in for the ones not wanted.
func lnBackApply(f *file, name string, in, dw, db bool) {
	type arg struct{ name, reg string }
	var ptrs []arg
	if in {
		ptrs = append(ptrs, arg{"dIn", "DI"})
	}
	if dw {
		ptrs = append(ptrs, arg{"dW", "R10"})
	}
	if db {
		ptrs = append(ptrs, arg{"dB", "R11"})
	}
	ptrs = append(ptrs, arg{"x", "SI"}, arg{"dout", "DX"})
	if in {
		ptrs = append(ptrs, arg{"w", "R8"})
	}
	floats := []arg{{"m", "Y6"}, {"r", "Y7"}}
	if in {
		floats = append(floats, arg{"sumD", "Y8"}, arg{"sumDN", "Y9"})
	}
	var pn, fn []string
	for _, p := range ptrs {
		pn = append(pn, p.name)
	}
	for _, a := range floats {
		fn = append(fn, a.name)
	}
	decl := fmt.Sprintf("func %s(%s *float32, n int, %s float32)", name, strings.Join(pn, ", "), strings.Join(fn, ", "))
	var what []string
	if db {
		what = append(what, "dB += dout")
	}
	if dw {
		what = append(what, "dW += xn·dout")
	}
	if in {
		what = append(what, "dIn += (w·dout - sumD - xn·sumDN)·r")
	}
	doc := "With xn = (x-m)·r: " + strings.Join(what, "; ") + "."
	f.text(name, 8*len(ptrs)+8+4*len(floats), decl, doc)
	off := 0
	for _, p := range ptrs {
		f.ins("MOVQ %s+%d(FP), %s", p.name, off, p.reg)
		off += 8
	}
	f.ins("MOVQ n+%d(FP), CX", off)
	off += 8
	for _, a := range floats {
		f.ins("VBROADCASTSS %s+%d(FP), %s", a.name, off, a.reg)
		off += 4
	}
	// Pointers advance in the order the original kernel wrote them.
	var adv []string
	for _, r := range []string{"SI", "DX", "R8", "DI", "R10", "R11"} {
		for _, p := range ptrs {
			if p.reg == r {
				adv = append(adv, r)
			}
		}
	}
	elementLoop(f, "a", adv, func() {
		f.ins("VMOVUPS      (SI), Y2")
		f.ins("VSUBPS       Y6, Y2, Y2")
		f.ins("VMULPS       Y7, Y2, Y2          // xn")
		f.ins("VMOVUPS      (DX), Y3            // dout")
		if db {
			f.ins("VADDPS       (R11), Y3, Y4")
			f.ins("VMOVUPS      Y4, (R11)           // dB += dout")
		}
		if dw {
			f.ins("VMOVUPS      (R10), Y4")
			f.ins("VFMADD231PS  Y3, Y2, Y4")
			f.ins("VMOVUPS      Y4, (R10)           // dW += xn·dout")
		}
		if in {
			f.ins("VMULPS       (R8), Y3, Y3        // w·dout")
			f.ins("VSUBPS       Y8, Y3, Y3          // - sumD")
			f.ins("VFNMADD231PS Y9, Y2, Y3          // - xn·sumDN")
			f.ins("VMOVUPS      (DI), Y4")
			f.ins("VFMADD231PS  Y7, Y3, Y4          // dIn += (...)·r")
			f.ins("VMOVUPS      Y4, (DI)")
		}
	}, nil)
}
