package main

// genSIMD writes internal/simd's kernels: the GEMM micro-kernels (one per
// instruction set, each either adding its tile to C or overwriting it), the
// one-row scoring kernels that reproduce a tile's lanes, and the panel
// transpose of the packer with its prefetch.
func genSIMD(f *file) {
	f.line("")
	f.comment(
		"Every lane of every kernel accumulates fma(a[p], b[p], acc) in p order",
		"from zero, so a product comes out bit-identical whichever kernel, tile",
		"position or row kernel computes it (the retrieval metrics rely on it).",
	)
	kernel6x16AVX2(f)
	kernelAVX512(f, 12)
	kernelAVX512(f, 8)
	kernelAVX512(f, 4)
	kernelBF16AVX2(f)
	kernelBF16AVX512(f)
	rowAVX2(f, 16)
	rowAVX2(f, 32)
	packTransAVX2(f)
	prefetchLines(f)
}

// prefetchLines hints the cache lines of n lines of kc values (ls apart)
// into L1, without waiting for them.
func prefetchLines(f *file) {
	f.text("prefetchLines", 32,
		"func prefetchLines(src *float32, ls, n, kc int)",
		"",
		"PREFETCHT0 of every 64-byte line of src[j*ls : j*ls+kc] for j < n.",
	)
	f.ins("MOVQ src+0(FP), SI")
	f.ins("MOVQ ls+8(FP), R8")
	f.ins("SHLQ $2, R8")
	f.ins("MOVQ n+16(FP), DX")
	f.ins("MOVQ kc+24(FP), R9")
	f.ins("ADDQ $15, R9")
	f.ins("SHRQ $4, R9")
	f.ins("TESTQ R9, R9")
	f.ins("JEQ  pdone")
	f.ins("TESTQ DX, DX")
	f.ins("JEQ  pdone")
	f.label("pline")
	f.ins("MOVQ SI, AX")
	f.ins("MOVQ R9, CX")
	f.label("ploop")
	f.ins("PREFETCHT0 (AX)")
	f.ins("ADDQ $64, AX")
	f.ins("DECQ CX")
	f.ins("JNE  ploop")
	f.ins("ADDQ R8, SI")
	f.ins("DECQ DX")
	f.ins("JNE  pline")
	f.label("pdone")
	f.ins("RET")
}

// tileArgs loads the micro-kernels' common arguments: kc in CX, the A and B
// panels in SI and DI, C in DX, its row stride in bytes in R8.
func tileArgs(f *file) {
	f.ins("MOVQ kc+0(FP), CX")
	f.ins("MOVQ a+8(FP), SI")
	f.ins("MOVQ b+16(FP), DI")
	f.ins("MOVQ c+24(FP), DX")
	f.ins("MOVQ ldc+32(FP), R8")
	f.ins("SHLQ $2, R8")
}

// storeTile writes rows accumulator pairs (row r in registers reg(2r) and
// reg(2r+1), width bytes apart) to C at DX, row stride R8: added to C when
// the accumulate argument is set, else over it. Both ways end at label done.
func storeTile(f *file, rows, width int, reg func(int) string, done string) {
	f.ins("CMPB accumulate+40(FP), $0")
	f.ins("JEQ  set")
	for r := range rows {
		for h := range 2 {
			f.ins("VADDPS  %s, %s, %s", mem(h*width, "DX"), reg(2*r+h), reg(2*r+h))
			f.ins("VMOVUPS %s, %s", reg(2*r+h), mem(h*width, "DX"))
		}
		if r < rows-1 {
			f.ins("ADDQ    R8, DX")
		}
	}
	f.ins("JMP     %s", done)
	f.label("set")
	for r := range rows {
		for h := range 2 {
			f.ins("VMOVUPS %s, %s", reg(2*r+h), mem(h*width, "DX"))
		}
		if r < rows-1 {
			f.ins("ADDQ    R8, DX")
		}
	}
}

// mem is the operand off(base), with a zero offset left out.
func mem(off int, base string) string {
	if off == 0 {
		return "(" + base + ")"
	}
	return itoa(off) + "(" + base + ")"
}

func y(i int) string { return "Y" + itoa(i) }
func z(i int) string { return "Z" + itoa(i) }
func x(i int) string { return "X" + itoa(i) }

func kernel6x16AVX2(f *file) {
	f.text("kernel6x16AVX2", 41,
		"func kernel6x16AVX2(kc int, a, b, c *float32, ldc int, accumulate bool)",
		"",
		"C[0:6, 0:16] (+)= A·B for packed panels a (kc×6) and b (kc×16); C row-major",
		"with leading dimension ldc (in elements). Twelve YMM accumulators (two per",
		"row of C) stay in registers for the whole kc loop; each step loads one row",
		"of B (two YMM) and broadcasts the six values of A's column.",
	)
	tileArgs(f)
	f.line("")
	for i := range 12 {
		f.ins("VXORPS %s, %s, %s", y(i), y(i), y(i))
	}
	f.line("")
	f.ins("TESTQ CX, CX")
	f.ins("JEQ   store")
	f.line("")
	f.comment("Two steps per iteration while at least two remain.")
	f.ins("CMPQ CX, $2")
	f.ins("JLT  tail")
	f.line("")
	// step s: B row s (Y12, Y13) times A column s, broadcast two at a
	// time into Y14 and Y15.
	step := func(s int) {
		f.ins("VMOVUPS      %s, Y12", mem(64*s, "DI"))
		f.ins("VMOVUPS      %s, Y13", mem(64*s+32, "DI"))
		for i := 0; i < 6; i += 2 {
			f.ins("VBROADCASTSS %s, Y14", mem(24*s+4*i, "SI"))
			f.ins("VBROADCASTSS %s, Y15", mem(24*s+4*i+4, "SI"))
			f.ins("VFMADD231PS  Y12, Y14, %s", y(2*i))
			f.ins("VFMADD231PS  Y13, Y14, %s", y(2*i+1))
			f.ins("VFMADD231PS  Y12, Y15, %s", y(2*i+2))
			f.ins("VFMADD231PS  Y13, Y15, %s", y(2*i+3))
		}
	}
	f.label("loop2")
	step(0)
	f.line("")
	step(1)
	f.line("")
	f.ins("ADDQ $48, SI")
	f.ins("ADDQ $128, DI")
	f.ins("SUBQ $2, CX")
	f.ins("CMPQ CX, $2")
	f.ins("JGE  loop2")
	f.line("")
	f.ins("TESTQ CX, CX")
	f.ins("JEQ   store")
	f.line("")
	f.label("tail")
	step(0)
	f.ins("ADDQ         $24, SI")
	f.ins("ADDQ         $64, DI")
	f.ins("DECQ         CX")
	f.ins("JNE          tail")
	f.line("")
	f.label("store")
	storeTile(f, 6, 32, y, "done")
	f.label("done")
	f.ins("VZEROUPPER")
	f.ins("RET")
}

// kernelAVX512 writes the AVX-512 micro-kernel for rows rows of C (12, the
// full tile, or fewer for a batch's last query panel: the same lanes).
func kernelAVX512(f *file, rows int) {
	name := "kernel" + itoa(rows) + "x32AVX512"
	sig := "func " + name + "(kc int, a, b, c *float32, ldc int, accumulate bool)"
	if rows == 12 {
		f.text(name, 41, sig,
			"",
			"C[0:12, 0:32] (+)= A·B for packed panels a (kc×12) and b (kc×32): 24 ZMM",
			"accumulators (two per row of C), one 32-wide row of B per step in two",
			"ZMM registers, A values broadcast into four rotating registers.",
		)
	} else {
		f.text(name, 41, sig,
			"",
			"The 12-row kernel's first "+itoa(rows)+" rows, for an A panel packed "+itoa(rows)+" wide.",
		)
	}
	tileAVX512(f, rows, func(i, bc int) {
		f.ins("VBROADCASTSS %d(SI), %s", 4*i, z(bc))
		f.ins("VFMADD231PS Z24, %s, %s", z(bc), z(2*i))
		f.ins("VFMADD231PS Z25, %s, %s", z(bc), z(2*i+1))
	})
}

// tileAVX512 writes the body of the AVX-512 kernels of rows rows of C:
// 2·rows ZMM accumulators, one 32-wide row of B per step in Z24 and Z25,
// and step(i, bc) for each row i, with ZMM register bc (four of them in
// turn) for its A value; A advances 4·rows bytes a step, B 128.
func tileAVX512(f *file, rows int, step func(i, bc int)) {
	tileArgs(f)
	f.comment("C is prefetched only when it is read (added to).")
	f.ins("CMPB accumulate+40(FP), $0")
	f.ins("JEQ  zero")
	f.ins("MOVQ DX, R9")
	for r := range rows {
		if r > 0 {
			f.ins("ADDQ R8, R9")
		}
		f.ins("PREFETCHT0 (R9)")
		f.ins("PREFETCHT0 64(R9)")
	}
	f.label("zero")
	for i := range 2 * rows {
		f.ins("VPXORD %s, %s, %s", z(i), z(i), z(i))
	}
	f.ins("TESTQ CX, CX")
	f.ins("JEQ   store")
	f.label("loop")
	f.ins("VMOVUPS (DI), Z24")
	f.ins("VMOVUPS 64(DI), Z25")
	for i := range rows {
		step(i, 26+i%4)
	}
	f.ins("ADDQ $%d, SI", 4*rows)
	f.ins("ADDQ $128, DI")
	f.ins("DECQ CX")
	f.ins("JNE  loop")
	f.label("store")
	storeTile(f, rows, 64, z, "done")
	f.label("done")
	f.comment(
		"Zero Z16-Z29 too (VZEROUPPER leaves them): a live AVX-512 register",
		"state makes every context switch and signal (Go's preemption) dearer.",
	)
	for i := 16; i < 30; i++ {
		f.ins("VPXORD %s, %s, %s", x(i), x(i), x(i))
	}
	f.ins("VZEROUPPER")
	f.ins("RET")
}

// rowAVX2 writes the one-row kernel against a panel of width columns: the
// same lanes as a tile's, one row of them.
func rowAVX2(f *file, width int) {
	name := "row" + itoa(width) + "AVX2"
	n := width / 8 // accumulators; Y(n) takes the broadcast
	f.text(name, 32,
		"func "+name+"(x, b *float32, k int, out *float32)",
		"",
		"out[0:"+itoa(width)+"] = x[0:k] times a "+itoa(width)+"-column packed B panel.",
	)
	f.ins("MOVQ x+0(FP), SI")
	f.ins("MOVQ b+8(FP), DI")
	f.ins("MOVQ k+16(FP), CX")
	f.ins("MOVQ out+24(FP), DX")
	for i := range n {
		f.ins("VXORPS %s, %s, %s", y(i), y(i), y(i))
	}
	f.ins("TESTQ CX, CX")
	f.ins("JEQ store")
	f.label("loop")
	f.ins("VBROADCASTSS (SI), %s", y(n))
	for i := range n {
		f.ins("VFMADD231PS %d(DI), %s, %s", 32*i, y(n), y(i))
	}
	f.ins("ADDQ $4, SI")
	f.ins("ADDQ $%d, DI", 4*width)
	f.ins("DECQ CX")
	f.ins("JNZ loop")
	f.label("store")
	for i := range n {
		f.ins("VMOVUPS %s, %d(DX)", y(i), 32*i)
	}
	f.ins("VZEROUPPER")
	f.ins("RET")
}

func packTransAVX2(f *file) {
	f.text("packTransAVX2", 40,
		"func packTransAVX2(dst, src *float32, lds, w, kc8 int)",
		"",
		"dst[p*w + j] = src[j*lds + p] for p < kc8 (a multiple of 8) and j < w (a",
		"multiple of 4): 8×8 blocks (and a final 4×8 one) transposed in registers.",
	)
	f.ins("MOVQ dst+0(FP), DI")
	f.ins("MOVQ src+8(FP), SI")
	f.ins("MOVQ lds+16(FP), R8")
	f.ins("SHLQ $2, R8")
	f.ins("MOVQ w+24(FP), R9")
	f.ins("MOVQ kc8+32(FP), CX")
	f.ins("SHRQ $3, CX")
	f.ins("JEQ  tdone")
	f.ins("MOVQ R9, R13")
	f.ins("SHLQ $2, R13")
	f.ins("LEAQ (R8)(R8*2), R12")
	// load4 loads four source rows from base (stride R8, R12 = 3·R8) into
	// Y(r0)..Y(r0+3).
	load4 := func(base string, r0 int) {
		for i, idx := range []string{"", "(R8*1)", "(R8*2)", "(R12*1)"} {
			f.ins("VMOVUPS (%s)%s, %s", base, idx, y(r0+i))
		}
	}
	// unpack and shuffle transpose the 4×4 blocks in each 128-bit half
	// of rows Y(r0)..Y(r0+3), through Y(t0)..Y(t0+3) and back.
	unpack := func(r0, t0 int) {
		for i := 0; i < 4; i += 2 {
			f.ins("VUNPCKLPS %s, %s, %s", y(r0+i+1), y(r0+i), y(t0+i))
			f.ins("VUNPCKHPS %s, %s, %s", y(r0+i+1), y(r0+i), y(t0+i+1))
		}
	}
	shuffle := func(t0, r0 int) {
		f.ins("VSHUFPS $0x44, %s, %s, %s", y(t0+2), y(t0), y(r0))
		f.ins("VSHUFPS $0xEE, %s, %s, %s", y(t0+2), y(t0), y(r0+1))
		f.ins("VSHUFPS $0x44, %s, %s, %s", y(t0+3), y(t0+1), y(r0+2))
		f.ins("VSHUFPS $0xEE, %s, %s, %s", y(t0+3), y(t0+1), y(r0+3))
	}
	f.label("tploop")
	f.ins("MOVQ SI, AX")
	f.ins("MOVQ DI, BX")
	f.ins("MOVQ R9, DX")
	f.label("tjloop")
	f.ins("CMPQ DX, $8")
	f.ins("JLT  tj4")
	f.ins("LEAQ (AX)(R8*4), R10")
	load4("AX", 0)
	load4("R10", 4)
	unpack(0, 8)
	unpack(4, 12)
	shuffle(8, 0)
	shuffle(12, 4)
	for _, imm := range []string{"$0x20", "$0x31"} {
		for i := range 4 {
			dst := 8 + i
			if imm == "$0x31" {
				dst = 12 + i
			}
			f.ins("VPERM2F128 %s, %s, %s, %s", imm, y(4+i), y(i), y(dst))
		}
	}
	f.ins("MOVQ BX, R11")
	for i := 8; i < 16; i++ {
		if i > 8 {
			f.ins("ADDQ R13, R11")
		}
		f.ins("VMOVUPS %s, (R11)", y(i))
	}
	f.ins("LEAQ (AX)(R8*8), AX")
	f.ins("ADDQ $32, BX")
	f.ins("SUBQ $8, DX")
	f.ins("JMP  tjloop")
	f.label("tj4")
	f.ins("CMPQ DX, $4")
	f.ins("JLT  tjdone")
	load4("AX", 0)
	unpack(0, 8)
	shuffle(8, 0)
	f.ins("MOVQ BX, R11")
	for i := range 4 {
		f.ins("VMOVUPS %s, (R11)", x(i))
		f.ins("ADDQ R13, R11")
	}
	for i := range 4 {
		f.ins("VEXTRACTF128 $1, %s, %s", y(i), x(4+i))
		f.ins("VMOVUPS %s, (R11)", x(4+i))
		if i < 3 {
			f.ins("ADDQ R13, R11")
		}
	}
	f.ins("LEAQ (AX)(R8*4), AX")
	f.ins("ADDQ $16, BX")
	f.ins("SUBQ $4, DX")
	f.ins("JMP  tj4")
	f.label("tjdone")
	f.ins("ADDQ $32, SI")
	f.ins("LEAQ (DI)(R13*8), DI")
	f.ins("DECQ CX")
	f.ins("JNE  tploop")
	f.label("tdone")
	f.ins("VZEROUPPER")
	f.ins("RET")
}
