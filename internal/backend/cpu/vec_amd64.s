#include "textflag.h"

// Vector float32 routines for AVX2+FMA, eight lanes at a time; n is a
// multiple of 8 (callers do the tail in Go). exp follows expf in expf.go
// (Cephes), with the input clamped to [-87.34, 88.72].

// Each constant is stored eight times so it can be a 256-bit memory operand.
DATA vconst<>+0(SB)/4, $0x3f800000 // one
DATA vconst<>+4(SB)/4, $0x3f800000
DATA vconst<>+8(SB)/4, $0x3f800000
DATA vconst<>+12(SB)/4, $0x3f800000
DATA vconst<>+16(SB)/4, $0x3f800000
DATA vconst<>+20(SB)/4, $0x3f800000
DATA vconst<>+24(SB)/4, $0x3f800000
DATA vconst<>+28(SB)/4, $0x3f800000
DATA vconst<>+32(SB)/4, $0x3f000000 // half
DATA vconst<>+36(SB)/4, $0x3f000000
DATA vconst<>+40(SB)/4, $0x3f000000
DATA vconst<>+44(SB)/4, $0x3f000000
DATA vconst<>+48(SB)/4, $0x3f000000
DATA vconst<>+52(SB)/4, $0x3f000000
DATA vconst<>+56(SB)/4, $0x3f000000
DATA vconst<>+60(SB)/4, $0x3f000000
DATA vconst<>+64(SB)/4, $0xc2aeac4f // lo
DATA vconst<>+68(SB)/4, $0xc2aeac4f
DATA vconst<>+72(SB)/4, $0xc2aeac4f
DATA vconst<>+76(SB)/4, $0xc2aeac4f
DATA vconst<>+80(SB)/4, $0xc2aeac4f
DATA vconst<>+84(SB)/4, $0xc2aeac4f
DATA vconst<>+88(SB)/4, $0xc2aeac4f
DATA vconst<>+92(SB)/4, $0xc2aeac4f
DATA vconst<>+96(SB)/4, $0x42b17217 // hi
DATA vconst<>+100(SB)/4, $0x42b17217
DATA vconst<>+104(SB)/4, $0x42b17217
DATA vconst<>+108(SB)/4, $0x42b17217
DATA vconst<>+112(SB)/4, $0x42b17217
DATA vconst<>+116(SB)/4, $0x42b17217
DATA vconst<>+120(SB)/4, $0x42b17217
DATA vconst<>+124(SB)/4, $0x42b17217
DATA vconst<>+128(SB)/4, $0x3fb8aa3b // log2e
DATA vconst<>+132(SB)/4, $0x3fb8aa3b
DATA vconst<>+136(SB)/4, $0x3fb8aa3b
DATA vconst<>+140(SB)/4, $0x3fb8aa3b
DATA vconst<>+144(SB)/4, $0x3fb8aa3b
DATA vconst<>+148(SB)/4, $0x3fb8aa3b
DATA vconst<>+152(SB)/4, $0x3fb8aa3b
DATA vconst<>+156(SB)/4, $0x3fb8aa3b
DATA vconst<>+160(SB)/4, $0x3f318000 // ln2hi
DATA vconst<>+164(SB)/4, $0x3f318000
DATA vconst<>+168(SB)/4, $0x3f318000
DATA vconst<>+172(SB)/4, $0x3f318000
DATA vconst<>+176(SB)/4, $0x3f318000
DATA vconst<>+180(SB)/4, $0x3f318000
DATA vconst<>+184(SB)/4, $0x3f318000
DATA vconst<>+188(SB)/4, $0x3f318000
DATA vconst<>+192(SB)/4, $0xb95e8083 // ln2lo
DATA vconst<>+196(SB)/4, $0xb95e8083
DATA vconst<>+200(SB)/4, $0xb95e8083
DATA vconst<>+204(SB)/4, $0xb95e8083
DATA vconst<>+208(SB)/4, $0xb95e8083
DATA vconst<>+212(SB)/4, $0xb95e8083
DATA vconst<>+216(SB)/4, $0xb95e8083
DATA vconst<>+220(SB)/4, $0xb95e8083
DATA vconst<>+224(SB)/4, $0x39506967 // p0
DATA vconst<>+228(SB)/4, $0x39506967
DATA vconst<>+232(SB)/4, $0x39506967
DATA vconst<>+236(SB)/4, $0x39506967
DATA vconst<>+240(SB)/4, $0x39506967
DATA vconst<>+244(SB)/4, $0x39506967
DATA vconst<>+248(SB)/4, $0x39506967
DATA vconst<>+252(SB)/4, $0x39506967
DATA vconst<>+256(SB)/4, $0x3ab743ce // p1
DATA vconst<>+260(SB)/4, $0x3ab743ce
DATA vconst<>+264(SB)/4, $0x3ab743ce
DATA vconst<>+268(SB)/4, $0x3ab743ce
DATA vconst<>+272(SB)/4, $0x3ab743ce
DATA vconst<>+276(SB)/4, $0x3ab743ce
DATA vconst<>+280(SB)/4, $0x3ab743ce
DATA vconst<>+284(SB)/4, $0x3ab743ce
DATA vconst<>+288(SB)/4, $0x3c088908 // p2
DATA vconst<>+292(SB)/4, $0x3c088908
DATA vconst<>+296(SB)/4, $0x3c088908
DATA vconst<>+300(SB)/4, $0x3c088908
DATA vconst<>+304(SB)/4, $0x3c088908
DATA vconst<>+308(SB)/4, $0x3c088908
DATA vconst<>+312(SB)/4, $0x3c088908
DATA vconst<>+316(SB)/4, $0x3c088908
DATA vconst<>+320(SB)/4, $0x3d2aa9c1 // p3
DATA vconst<>+324(SB)/4, $0x3d2aa9c1
DATA vconst<>+328(SB)/4, $0x3d2aa9c1
DATA vconst<>+332(SB)/4, $0x3d2aa9c1
DATA vconst<>+336(SB)/4, $0x3d2aa9c1
DATA vconst<>+340(SB)/4, $0x3d2aa9c1
DATA vconst<>+344(SB)/4, $0x3d2aa9c1
DATA vconst<>+348(SB)/4, $0x3d2aa9c1
DATA vconst<>+352(SB)/4, $0x3e2aaaaa // p4
DATA vconst<>+356(SB)/4, $0x3e2aaaaa
DATA vconst<>+360(SB)/4, $0x3e2aaaaa
DATA vconst<>+364(SB)/4, $0x3e2aaaaa
DATA vconst<>+368(SB)/4, $0x3e2aaaaa
DATA vconst<>+372(SB)/4, $0x3e2aaaaa
DATA vconst<>+376(SB)/4, $0x3e2aaaaa
DATA vconst<>+380(SB)/4, $0x3e2aaaaa
DATA vconst<>+384(SB)/4, $0x3f000000 // p5
DATA vconst<>+388(SB)/4, $0x3f000000
DATA vconst<>+392(SB)/4, $0x3f000000
DATA vconst<>+396(SB)/4, $0x3f000000
DATA vconst<>+400(SB)/4, $0x3f000000
DATA vconst<>+404(SB)/4, $0x3f000000
DATA vconst<>+408(SB)/4, $0x3f000000
DATA vconst<>+412(SB)/4, $0x3f000000
DATA vconst<>+416(SB)/4, $0x3fd9db23 // gelu
DATA vconst<>+420(SB)/4, $0x3fd9db23
DATA vconst<>+424(SB)/4, $0x3fd9db23
DATA vconst<>+428(SB)/4, $0x3fd9db23
DATA vconst<>+432(SB)/4, $0x3fd9db23
DATA vconst<>+436(SB)/4, $0x3fd9db23
DATA vconst<>+440(SB)/4, $0x3fd9db23
DATA vconst<>+444(SB)/4, $0x3fd9db23
DATA vconst<>+448(SB)/4, $0xbfd9db23 // neggelu
DATA vconst<>+452(SB)/4, $0xbfd9db23
DATA vconst<>+456(SB)/4, $0xbfd9db23
DATA vconst<>+460(SB)/4, $0xbfd9db23
DATA vconst<>+464(SB)/4, $0xbfd9db23
DATA vconst<>+468(SB)/4, $0xbfd9db23
DATA vconst<>+472(SB)/4, $0xbfd9db23
DATA vconst<>+476(SB)/4, $0xbfd9db23
DATA vconst<>+480(SB)/4, $0x0000007f
DATA vconst<>+484(SB)/4, $0x0000007f
DATA vconst<>+488(SB)/4, $0x0000007f
DATA vconst<>+492(SB)/4, $0x0000007f
DATA vconst<>+496(SB)/4, $0x0000007f
DATA vconst<>+500(SB)/4, $0x0000007f
DATA vconst<>+504(SB)/4, $0x0000007f
DATA vconst<>+508(SB)/4, $0x0000007f
GLOBL vconst<>(SB), RODATA|NOPTR, $512

// func expAVX2(dst, src *float32, n int)
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JEQ  expdone
exploop:
	VMOVUPS (SI), Y0
	VMAXPS       vconst<>+64(SB), Y0, Y0
	VMINPS       vconst<>+96(SB), Y0, Y0
	VMOVUPS      vconst<>+32(SB), Y1
	VFMADD231PS  vconst<>+128(SB), Y0, Y1
	VROUNDPS     $1, Y1, Y1
	VFNMADD231PS vconst<>+160(SB), Y1, Y0
	VFNMADD231PS vconst<>+192(SB), Y1, Y0
	VMOVUPS      vconst<>+224(SB), Y2
	VFMADD213PS  vconst<>+256(SB), Y0, Y2
	VFMADD213PS  vconst<>+288(SB), Y0, Y2
	VFMADD213PS  vconst<>+320(SB), Y0, Y2
	VFMADD213PS  vconst<>+352(SB), Y0, Y2
	VFMADD213PS  vconst<>+384(SB), Y0, Y2
	VMULPS       Y0, Y0, Y3
	VFMADD213PS  Y0, Y3, Y2
	VADDPS       vconst<>+0(SB), Y2, Y2
	VCVTTPS2DQ   Y1, Y1
	VPADDD       vconst<>+480(SB), Y1, Y1
	VPSLLD       $23, Y1, Y1
	VMULPS       Y1, Y2, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNE  exploop
expdone:
	VZEROUPPER
	RET

// func quickGELUAVX2(out, in *float32, n int)
TEXT ·quickGELUAVX2(SB), NOSPLIT, $0-24
	MOVQ out+0(FP), DI
	MOVQ in+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JEQ  gdone
gloop:
	VMOVUPS (SI), Y4
	VMULPS vconst<>+448(SB), Y4, Y0
	VMAXPS       vconst<>+64(SB), Y0, Y0
	VMINPS       vconst<>+96(SB), Y0, Y0
	VMOVUPS      vconst<>+32(SB), Y1
	VFMADD231PS  vconst<>+128(SB), Y0, Y1
	VROUNDPS     $1, Y1, Y1
	VFNMADD231PS vconst<>+160(SB), Y1, Y0
	VFNMADD231PS vconst<>+192(SB), Y1, Y0
	VMOVUPS      vconst<>+224(SB), Y2
	VFMADD213PS  vconst<>+256(SB), Y0, Y2
	VFMADD213PS  vconst<>+288(SB), Y0, Y2
	VFMADD213PS  vconst<>+320(SB), Y0, Y2
	VFMADD213PS  vconst<>+352(SB), Y0, Y2
	VFMADD213PS  vconst<>+384(SB), Y0, Y2
	VMULPS       Y0, Y0, Y3
	VFMADD213PS  Y0, Y3, Y2
	VADDPS       vconst<>+0(SB), Y2, Y2
	VCVTTPS2DQ   Y1, Y1
	VPADDD       vconst<>+480(SB), Y1, Y1
	VPSLLD       $23, Y1, Y1
	VMULPS       Y1, Y2, Y0
	VADDPS vconst<>+0(SB), Y0, Y0
	VDIVPS Y0, Y4, Y4
	VMOVUPS Y4, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNE  gloop
gdone:
	VZEROUPPER
	RET

// func quickGELUBackwardAVX2(dIn, dOut, in *float32, n int)
TEXT ·quickGELUBackwardAVX2(SB), NOSPLIT, $0-32
	MOVQ dIn+0(FP), DI
	MOVQ dOut+8(FP), DX
	MOVQ in+16(FP), SI
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JEQ  bdone
bloop:
	VMOVUPS (SI), Y4
	VMULPS vconst<>+448(SB), Y4, Y0
	VMAXPS       vconst<>+64(SB), Y0, Y0
	VMINPS       vconst<>+96(SB), Y0, Y0
	VMOVUPS      vconst<>+32(SB), Y1
	VFMADD231PS  vconst<>+128(SB), Y0, Y1
	VROUNDPS     $1, Y1, Y1
	VFNMADD231PS vconst<>+160(SB), Y1, Y0
	VFNMADD231PS vconst<>+192(SB), Y1, Y0
	VMOVUPS      vconst<>+224(SB), Y2
	VFMADD213PS  vconst<>+256(SB), Y0, Y2
	VFMADD213PS  vconst<>+288(SB), Y0, Y2
	VFMADD213PS  vconst<>+320(SB), Y0, Y2
	VFMADD213PS  vconst<>+352(SB), Y0, Y2
	VFMADD213PS  vconst<>+384(SB), Y0, Y2
	VMULPS       Y0, Y0, Y3
	VFMADD213PS  Y0, Y3, Y2
	VADDPS       vconst<>+0(SB), Y2, Y2
	VCVTTPS2DQ   Y1, Y1
	VPADDD       vconst<>+480(SB), Y1, Y1
	VPSLLD       $23, Y1, Y1
	VMULPS       Y1, Y2, Y0
	VADDPS vconst<>+0(SB), Y0, Y0
	VMOVUPS vconst<>+0(SB), Y5
	VDIVPS Y0, Y5, Y5
	VMOVUPS vconst<>+0(SB), Y6
	VSUBPS Y5, Y6, Y6
	VMULPS vconst<>+416(SB), Y4, Y4
	VMULPS Y5, Y4, Y4
	VFMADD213PS Y5, Y6, Y4
	VMOVUPS (DI), Y7
	VFMADD231PS (DX), Y4, Y7
	VMOVUPS Y7, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	DECQ CX
	JNE  bloop
bdone:
	VZEROUPPER
	RET

// func packTransAVX2(dst, src *float32, lds, w, kc8 int)
//
// dst[p*w + j] = src[j*lds + p] for p < kc8 (a multiple of 8) and j < w (a
// multiple of 4): 8×8 blocks (and a final 4×8 one) transposed in registers.
TEXT ·packTransAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ lds+16(FP), R8
	SHLQ $2, R8
	MOVQ w+24(FP), R9
	MOVQ kc8+32(FP), CX
	SHRQ $3, CX
	JEQ  tdone
	MOVQ R9, R13
	SHLQ $2, R13
	LEAQ (R8)(R8*2), R12
tploop:
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ R9, DX
tjloop:
	CMPQ DX, $8
	JLT  tj4
	LEAQ (AX)(R8*4), R10
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(R8*1), Y1
	VMOVUPS (AX)(R8*2), Y2
	VMOVUPS (AX)(R12*1), Y3
	VMOVUPS (R10), Y4
	VMOVUPS (R10)(R8*1), Y5
	VMOVUPS (R10)(R8*2), Y6
	VMOVUPS (R10)(R12*1), Y7
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15
	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3
	VSHUFPS $0x44, Y14, Y12, Y4
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15
	MOVQ BX, R11
	VMOVUPS Y8, (R11)
	ADDQ R13, R11
	VMOVUPS Y9, (R11)
	ADDQ R13, R11
	VMOVUPS Y10, (R11)
	ADDQ R13, R11
	VMOVUPS Y11, (R11)
	ADDQ R13, R11
	VMOVUPS Y12, (R11)
	ADDQ R13, R11
	VMOVUPS Y13, (R11)
	ADDQ R13, R11
	VMOVUPS Y14, (R11)
	ADDQ R13, R11
	VMOVUPS Y15, (R11)
	LEAQ (AX)(R8*8), AX
	ADDQ $32, BX
	SUBQ $8, DX
	JMP  tjloop
tj4:
	CMPQ DX, $4
	JLT  tjdone
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(R8*1), Y1
	VMOVUPS (AX)(R8*2), Y2
	VMOVUPS (AX)(R12*1), Y3
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3
	MOVQ BX, R11
	VMOVUPS X0, (R11)
	ADDQ R13, R11
	VMOVUPS X1, (R11)
	ADDQ R13, R11
	VMOVUPS X2, (R11)
	ADDQ R13, R11
	VMOVUPS X3, (R11)
	ADDQ R13, R11
	VEXTRACTF128 $1, Y0, X4
	VMOVUPS X4, (R11)
	ADDQ R13, R11
	VEXTRACTF128 $1, Y1, X5
	VMOVUPS X5, (R11)
	ADDQ R13, R11
	VEXTRACTF128 $1, Y2, X6
	VMOVUPS X6, (R11)
	ADDQ R13, R11
	VEXTRACTF128 $1, Y3, X7
	VMOVUPS X7, (R11)
	LEAQ (AX)(R8*4), AX
	ADDQ $16, BX
	SUBQ $4, DX
	JMP  tj4
tjdone:
	ADDQ $32, SI
	LEAQ (DI)(R13*8), DI
	DECQ CX
	JNE  tploop
tdone:
	VZEROUPPER
	RET
