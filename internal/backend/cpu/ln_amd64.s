#include "textflag.h"

// Layer-norm row kernels for AVX2+FMA; n is a multiple of 8.

// HSUM leaves the sum of the eight lanes of Y in the low lane of X (T is a
// scratch XMM register).
#define HSUM(Y, X, T) \
	VEXTRACTF128 $1, Y, T \
	VADDPS       T, X, X  \
	VMOVHLPS     X, X, T  \
	VADDPS       T, X, X  \
	VMOVSHDUP    X, T     \
	VADDSS       T, X, X

// func sumAVX2(x *float32, n int) float32
TEXT ·sumAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VXORPS Y0, Y0, Y0
	SHRQ $3, CX
	JEQ  sdone
sloop:
	VADDPS (SI), Y0, Y0
	ADDQ   $32, SI
	DECQ   CX
	JNE    sloop
sdone:
	HSUM(Y0, X0, X1)
	MOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func sumSqDevAVX2(x *float32, n int, m float32) float32
// Σ (x-m)².
TEXT ·sumSqDevAVX2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS m+16(FP), Y2
	VXORPS Y0, Y0, Y0
	SHRQ $3, CX
	JEQ  qdone
qloop:
	VMOVUPS     (SI), Y1
	VSUBPS      Y2, Y1, Y1
	VFMADD231PS Y1, Y1, Y0
	ADDQ        $32, SI
	DECQ        CX
	JNE         qloop
qdone:
	HSUM(Y0, X0, X1)
	MOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func lnNormAVX2(out, x, w, b *float32, n int, m, r float32)
// out = (x-m)·r·w + b.
TEXT ·lnNormAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ w+16(FP), R8
	MOVQ b+24(FP), R9
	MOVQ n+32(FP), CX
	VBROADCASTSS m+40(FP), Y6
	VBROADCASTSS r+44(FP), Y7
	SHRQ $3, CX
	JEQ  ndone
nloop:
	VMOVUPS     (SI), Y0
	VSUBPS      Y6, Y0, Y0
	VMULPS      Y7, Y0, Y0
	VMOVUPS     (R9), Y1
	VFMADD231PS (R8), Y0, Y1
	VMOVUPS     Y1, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	ADDQ        $32, R8
	ADDQ        $32, R9
	DECQ        CX
	JNE         nloop
ndone:
	VZEROUPPER
	RET

// func lnBackDotsAVX2(x, dout, w *float32, n int, m, r float32) (sumD, sumDN float32)
// sumD = Σ w·dout, sumDN = Σ w·dout·(x-m)·r.
TEXT ·lnBackDotsAVX2(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), SI
	MOVQ dout+8(FP), DX
	MOVQ w+16(FP), R8
	MOVQ n+24(FP), CX
	VBROADCASTSS m+32(FP), Y6
	VBROADCASTSS r+36(FP), Y7
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	SHRQ $3, CX
	JEQ  ddone
dloop:
	VMOVUPS     (SI), Y2
	VSUBPS      Y6, Y2, Y2
	VMULPS      Y7, Y2, Y2
	VMOVUPS     (DX), Y3
	VMULPS      (R8), Y3, Y3
	VADDPS      Y3, Y0, Y0
	VFMADD231PS Y3, Y2, Y1
	ADDQ        $32, SI
	ADDQ        $32, DX
	ADDQ        $32, R8
	DECQ        CX
	JNE         dloop
ddone:
	HSUM(Y0, X0, X2)
	HSUM(Y1, X1, X2)
	MOVSS X0, sumD+40(FP)
	MOVSS X1, sumDN+44(FP)
	VZEROUPPER
	RET

// func lnBackApplyAVX2(dIn, dW, dB, x, dout, w *float32, n int, m, r, sumD, sumDN float32)
// With xn = (x-m)·r: dB += dout; dW += xn·dout;
// dIn += (w·dout - sumD - xn·sumDN)·r.
TEXT ·lnBackApplyAVX2(SB), NOSPLIT, $0-72
	MOVQ dIn+0(FP), DI
	MOVQ dW+8(FP), R10
	MOVQ dB+16(FP), R11
	MOVQ x+24(FP), SI
	MOVQ dout+32(FP), DX
	MOVQ w+40(FP), R8
	MOVQ n+48(FP), CX
	VBROADCASTSS m+56(FP), Y6
	VBROADCASTSS r+60(FP), Y7
	VBROADCASTSS sumD+64(FP), Y8
	VBROADCASTSS sumDN+68(FP), Y9
	SHRQ $3, CX
	JEQ  adone
aloop:
	VMOVUPS      (SI), Y2
	VSUBPS       Y6, Y2, Y2
	VMULPS       Y7, Y2, Y2          // xn
	VMOVUPS      (DX), Y3            // dout
	VADDPS       (R11), Y3, Y4
	VMOVUPS      Y4, (R11)           // dB += dout
	VMOVUPS      (R10), Y4
	VFMADD231PS  Y3, Y2, Y4
	VMOVUPS      Y4, (R10)           // dW += xn·dout
	VMULPS       (R8), Y3, Y3        // w·dout
	VSUBPS       Y8, Y3, Y3          // - sumD
	VFNMADD231PS Y9, Y2, Y3          // - xn·sumDN
	VMOVUPS      (DI), Y4
	VFMADD231PS  Y7, Y3, Y4          // dIn += (...)·r
	VMOVUPS      Y4, (DI)
	ADDQ         $32, SI
	ADDQ         $32, DX
	ADDQ         $32, R8
	ADDQ         $32, DI
	ADDQ         $32, R10
	ADDQ         $32, R11
	DECQ         CX
	JNE          aloop
adone:
	VZEROUPPER
	RET

// Softmax row helpers (attention); n is a multiple of 8.

// func maxAVX2(x *float32, n int) float32 (n >= 8)
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VMOVUPS (SI), Y0
	ADDQ $32, SI
	SHRQ $3, CX
	DECQ CX
	JEQ  mdone
mloop:
	VMAXPS (SI), Y0, Y0
	ADDQ   $32, SI
	DECQ   CX
	JNE    mloop
mdone:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VMAXPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VMAXSS       X1, X0, X0
	MOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func shiftScaleAVX2(x *float32, n int, m, a float32)
// x = (x - m)·a.
TEXT ·shiftScaleAVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS m+16(FP), Y6
	VBROADCASTSS a+20(FP), Y7
	SHRQ $3, CX
	JEQ  ssdone
ssloop:
	VMOVUPS (SI), Y0
	VSUBPS  Y6, Y0, Y0
	VMULPS  Y7, Y0, Y0
	VMOVUPS Y0, (SI)
	ADDQ    $32, SI
	DECQ    CX
	JNE     ssloop
ssdone:
	VZEROUPPER
	RET

// func dotAVX2(a, b *float32, n int) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	SHRQ $3, CX
	JEQ  dtdone
dtloop:
	VMOVUPS     (SI), Y1
	VFMADD231PS (DI), Y1, Y0
	ADDQ        $32, SI
	ADDQ        $32, DI
	DECQ        CX
	JNE         dtloop
dtdone:
	HSUM(Y0, X0, X1)
	MOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func softmaxBackAVX2(d, p *float32, n int, s, a float32)
// d = p·(d - s)·a.
TEXT ·softmaxBackAVX2(SB), NOSPLIT, $0-32
	MOVQ d+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS s+24(FP), Y6
	VBROADCASTSS a+28(FP), Y7
	SHRQ $3, CX
	JEQ  sbdone
sbloop:
	VMOVUPS (DI), Y0
	VSUBPS  Y6, Y0, Y0
	VMULPS  (SI), Y0, Y0
	VMULPS  Y7, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNE     sbloop
sbdone:
	VZEROUPPER
	RET
