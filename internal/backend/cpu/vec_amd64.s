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
