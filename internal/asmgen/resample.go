package main

// genResample writes internal/imageproc's AVX2 resampling kernel: one
// output row of Pillow's 8-bit fixed-point filter, eight or 32 columns per
// step. VPMULLD and VPADDD wrap in int32 exactly as Pillow's INT32
// accumulator does, and VPACKSSDW then VPACKUSWB saturate as clip8 does,
// so the bytes equal the Go loop's.
func genResample(f *file) {
	f.line("")
	f.comment("VPERMD order that undoes the in-lane interleave of the two packs.")
	for i, v := range []int{0, 4, 1, 5, 2, 6, 3, 7} {
		f.line("DATA packperm<>+%d(SB)/4, $%d", 4*i, v)
	}
	f.line("GLOBL packperm<>(SB), RODATA|NOPTR, $32")
	f.text("filterRowAVX2", 48,
		"func filterRowAVX2(dst, src *byte, stride int, coeffs *int32, taps, n int)",
		"",
		"dst[i] = clip8(1<<21 + sum over j < taps of src[j*stride+i]*coeffs[j])",
		"for i < n, n a multiple of 8 and taps at least 1; clip8 drops 22",
		"fraction bits and saturates to [0, 255].",
	)
	f.ins("MOVQ dst+0(FP), DI")
	f.ins("MOVQ src+8(FP), SI")
	f.ins("MOVQ stride+16(FP), DX")
	f.ins("MOVQ coeffs+24(FP), R8")
	f.ins("MOVQ taps+32(FP), R9")
	f.ins("MOVQ n+40(FP), CX")
	f.ins("MOVL $0x200000, AX               // half: 1 << (22-1)")
	f.ins("VMOVD AX, X15")
	f.ins("VPBROADCASTD X15, Y15")
	f.ins("VMOVDQU packperm<>(SB), Y14")
	f.line("")
	f.label("loop32")
	f.ins("CMPQ CX, $32")
	f.ins("JLT  loop8")
	for a := range 4 {
		f.ins("VMOVDQA Y15, Y%d", a)
	}
	f.ins("MOVQ SI, R10")
	f.ins("MOVQ R8, R11")
	f.ins("MOVQ R9, R12")
	f.label("tap32")
	f.ins("VPBROADCASTD (R11), Y4")
	for a := range 4 {
		f.ins("VPMOVZXBD %d(R10), Y%d", 8*a, 5+a)
		f.ins("VPMULLD Y4, Y%d, Y%d", 5+a, 5+a)
		f.ins("VPADDD Y%d, Y%d, Y%d", 5+a, a, a)
	}
	f.ins("ADDQ DX, R10")
	f.ins("ADDQ $4, R11")
	f.ins("DECQ R12")
	f.ins("JNE  tap32")
	for a := range 4 {
		f.ins("VPSRAD $22, Y%d, Y%d", a, a)
	}
	f.ins("VPACKSSDW Y1, Y0, Y0")
	f.ins("VPACKSSDW Y3, Y2, Y2")
	f.ins("VPACKUSWB Y2, Y0, Y0")
	f.ins("VPERMD Y0, Y14, Y0")
	f.ins("VMOVDQU Y0, (DI)")
	f.ins("ADDQ $32, DI")
	f.ins("ADDQ $32, SI")
	f.ins("SUBQ $32, CX")
	f.ins("JMP  loop32")
	f.line("")
	f.label("loop8")
	f.ins("CMPQ CX, $8")
	f.ins("JLT  done")
	f.ins("VMOVDQA Y15, Y0")
	f.ins("MOVQ SI, R10")
	f.ins("MOVQ R8, R11")
	f.ins("MOVQ R9, R12")
	f.label("tap8")
	f.ins("VPBROADCASTD (R11), Y4")
	f.ins("VPMOVZXBD (R10), Y5")
	f.ins("VPMULLD Y4, Y5, Y5")
	f.ins("VPADDD Y5, Y0, Y0")
	f.ins("ADDQ DX, R10")
	f.ins("ADDQ $4, R11")
	f.ins("DECQ R12")
	f.ins("JNE  tap8")
	f.ins("VPSRAD $22, Y0, Y0")
	f.ins("VEXTRACTI128 $1, Y0, X1")
	f.ins("VPACKSSDW X1, X0, X0")
	f.ins("VPACKUSWB X0, X0, X0")
	f.ins("MOVQ X0, (DI)")
	f.ins("ADDQ $8, DI")
	f.ins("ADDQ $8, SI")
	f.ins("SUBQ $8, CX")
	f.ins("JMP  loop8")
	f.line("")
	f.label("done")
	f.ins("VZEROUPPER")
	f.ins("RET")
}
