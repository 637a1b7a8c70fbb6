package main

// genDropout writes internal/backend/cpu's AVX-512 dropout mask.
func genDropout(f *file) {
	f.line("")
	f.comment("Lane offsets 1..8 for the splitmix64 counter (i+1).")
	for i := range 8 {
		f.line("DATA laneinc<>+%d(SB)/8, $%d", 8*i, i+1)
	}
	f.line("GLOBL laneinc<>(SB), RODATA|NOPTR, $64")
	f.text("dropoutAVX512", 40,
		"func dropoutAVX512(mask *float32, n int, seed, start uint64, p, keep float32)",
		"",
		"mask[i] = 0 if DropoutUniform(seed, start+i) < p else keep, for i < n (a",
		"multiple of 8): eight splitmix64 streams per iteration in ZMM lanes",
		"(VPMULLQ needs AVX-512DQ), the top 24 bits converted exactly to float32.",
	)
	f.ins("MOVQ mask+0(FP), DI")
	f.ins("MOVQ n+8(FP), CX")
	f.ins("SHRQ $3, CX")
	f.ins("JEQ  done")
	f.ins("MOVQ seed+16(FP), AX")
	f.ins("VPBROADCASTQ AX, Z2")
	f.ins("MOVQ start+24(FP), AX")
	f.ins("VPBROADCASTQ AX, Z0")
	f.ins("VPADDQ laneinc<>(SB), Z0, Z0     // counters start+1 .. start+8")
	f.ins("MOVQ $8, AX")
	f.ins("VPBROADCASTQ AX, Z3")
	// splitmix64's increment and multipliers.
	for _, c := range []struct{ v, reg string }{{"0x9E3779B97F4A7C15", "Z1"}, {"0xBF58476D1CE4E5B9", "Z4"}, {"0x94D049BB133111EB", "Z5"}} {
		f.ins("MOVQ $%s, AX", c.v)
		f.ins("VPBROADCASTQ AX, %s", c.reg)
	}
	f.ins("VBROADCASTSS p+32(FP), Y6")
	f.ins("VBROADCASTSS keep+36(FP), Y7")
	f.ins("MOVL $0x33800000, AX             // 2^-24")
	f.ins("VMOVD AX, X8")
	f.ins("VBROADCASTSS X8, Y8")
	f.line("")
	f.label("loop")
	f.ins("VPMULLQ Z1, Z0, Z9")
	f.ins("VPADDQ  Z2, Z9, Z9")
	// z ^= z >> s, then z *= the next multiplier (none after the last).
	for i, s := range []int{30, 27, 31} {
		f.ins("VPSRLQ  $%d, Z9, Z10", s)
		f.ins("VPXORQ  Z10, Z9, Z9")
		if i < 2 {
			f.ins("VPMULLQ %s, Z9, Z9", []string{"Z4", "Z5"}[i])
		}
	}
	f.ins("VPSRLQ  $40, Z9, Z9")
	f.ins("VPMOVQD Z9, Y9")
	f.ins("VCVTDQ2PS Y9, Y9")
	f.ins("VMULPS  Y8, Y9, Y9")
	f.ins("VCMPPS  $13, Y6, Y9, Y10         // u >= p (ordered): keep")
	f.ins("VANDPS  Y7, Y10, Y10")
	f.ins("VMOVUPS Y10, (DI)")
	f.ins("VPADDQ  Z3, Z0, Z0")
	f.ins("ADDQ    $32, DI")
	f.ins("DECQ    CX")
	f.ins("JNE     loop")
	f.line("")
	f.ins("VPXORD X16, X16, X16")
	f.label("done")
	f.ins("VZEROUPPER")
	f.ins("RET")
}
