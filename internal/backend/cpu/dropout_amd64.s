#include "textflag.h"

// Lane offsets 1..8 for the splitmix64 counter (i+1).
DATA laneinc<>+0(SB)/8, $1
DATA laneinc<>+8(SB)/8, $2
DATA laneinc<>+16(SB)/8, $3
DATA laneinc<>+24(SB)/8, $4
DATA laneinc<>+32(SB)/8, $5
DATA laneinc<>+40(SB)/8, $6
DATA laneinc<>+48(SB)/8, $7
DATA laneinc<>+56(SB)/8, $8
GLOBL laneinc<>(SB), RODATA|NOPTR, $64

// func dropoutAVX512(mask *float32, n int, seed, start uint64, p, keep float32)
//
// mask[i] = 0 if DropoutUniform(seed, start+i) < p else keep, for i < n (a
// multiple of 8): eight splitmix64 streams per iteration in ZMM lanes
// (VPMULLQ needs AVX-512DQ), the top 24 bits converted exactly to float32.
TEXT ·dropoutAVX512(SB), NOSPLIT, $0-40
	MOVQ mask+0(FP), DI
	MOVQ n+8(FP), CX
	SHRQ $3, CX
	JEQ  done
	MOVQ seed+16(FP), AX
	VPBROADCASTQ AX, Z2
	MOVQ start+24(FP), AX
	VPBROADCASTQ AX, Z0
	VPADDQ laneinc<>(SB), Z0, Z0     // counters start+1 .. start+8
	MOVQ $8, AX
	VPBROADCASTQ AX, Z3
	MOVQ $0x9E3779B97F4A7C15, AX
	VPBROADCASTQ AX, Z1
	MOVQ $0xBF58476D1CE4E5B9, AX
	VPBROADCASTQ AX, Z4
	MOVQ $0x94D049BB133111EB, AX
	VPBROADCASTQ AX, Z5
	VBROADCASTSS p+32(FP), Y6
	VBROADCASTSS keep+36(FP), Y7
	MOVL $0x33800000, AX             // 2^-24
	VMOVD AX, X8
	VBROADCASTSS X8, Y8

loop:
	VPMULLQ Z1, Z0, Z9
	VPADDQ  Z2, Z9, Z9
	VPSRLQ  $30, Z9, Z10
	VPXORQ  Z10, Z9, Z9
	VPMULLQ Z4, Z9, Z9
	VPSRLQ  $27, Z9, Z10
	VPXORQ  Z10, Z9, Z9
	VPMULLQ Z5, Z9, Z9
	VPSRLQ  $31, Z9, Z10
	VPXORQ  Z10, Z9, Z9
	VPSRLQ  $40, Z9, Z9
	VPMOVQD Z9, Y9
	VCVTDQ2PS Y9, Y9
	VMULPS  Y8, Y9, Y9
	VCMPPS  $13, Y6, Y9, Y10         // u >= p (ordered): keep
	VANDPS  Y7, Y10, Y10
	VMOVUPS Y10, (DI)
	VPADDQ  Z3, Z0, Z0
	ADDQ    $32, DI
	DECQ    CX
	JNE     loop

	VPXORD X16, X16, X16
done:
	VZEROUPPER
	RET
