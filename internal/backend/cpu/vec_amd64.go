//go:build amd64 && !purego

package cpu

import "math"

// Assembly in vec_amd64.s, ln_amd64.s and dropout_amd64.s (written by
// internal/asmgen); n is a multiple of 8 and at least 8.

//go:noescape
func expAVX2(dst, src *float32, n int)

//go:noescape
func quickGELUAVX2(out, in *float32, n int)

//go:noescape
func quickGELUBackwardAVX2(dIn, dOut, in *float32, n int)

//go:noescape
func geluAVX2(out, in *float32, n int)

//go:noescape
func geluBackwardAVX2(dIn, dOut, in *float32, n int)

//go:noescape
func geluTanhAVX2(out, in *float32, n int)

//go:noescape
func geluTanhBackwardAVX2(dIn, dOut, in *float32, n int)

//go:noescape
func sumAVX2(x *float32, n int) float32

//go:noescape
func sumSqDevAVX2(x *float32, n int, m float32) float32

//go:noescape
func lnNormAVX2(out, x, w, b *float32, n int, m, r float32)

//go:noescape
func lnBackDotsAVX2(x, dout, w *float32, n int, m, r float32) (sumD, sumDN float32)

//go:noescape
func lnBackApplyAVX2(dIn, dW, dB, x, dout, w *float32, n int, m, r, sumD, sumDN float32)

//go:noescape
func lnBackInAVX2(dIn, x, dout, w *float32, n int, m, r, sumD, sumDN float32)

//go:noescape
func lnBackDWAVX2(dW, x, dout *float32, n int, m, r float32)

//go:noescape
func maxAVX2(x *float32, n int) float32

//go:noescape
func shiftScaleAVX2(x *float32, n int, m, a float32)

//go:noescape
func dotAVX2(a, b *float32, n int) float32

//go:noescape
func softmaxBackAVX2(d, p *float32, n int, s, a float32)

//go:noescape
func dropoutAVX512(mask *float32, n int, seed, start uint64, p, keep float32)

// asmOps are the AVX2 and AVX-512 tables: AVX-512 adds the dropout mask
// (VPMULLQ needs AVX-512DQ) to AVX2's.
var asmOps = func() [2]*vecOps {
	avx2 := vecOps{
		exp: expAVX2Ops,
		activate: [numActivations]func(out, in []float32){
			quickGELUAVX2Ops, vecUnary(geluAVX2), vecUnary(geluTanhAVX2)},
		activateBackward: [numActivations]func(dIn, dOut, in []float32){
			quickGELUBackwardAVX2Ops, vecBackward(geluBackwardAVX2), vecBackward(geluTanhBackwardAVX2)},
		dropoutMask:       dropoutMaskGo,
		layerNorm:         layerNormAVX2,
		layerNormBackward: layerNormBackwardAVX2,
		max:               maxAVX2Ops,
		sum:               sumAVX2Ops,
		shiftScale:        shiftScaleAVX2Ops,
		scale:             scaleAVX2Ops,
		dot:               dotAVX2Ops,
		softmaxBack:       softmaxBackAVX2Ops,
	}
	avx512 := avx2
	avx512.dropoutMask = dropoutMaskAVX512
	return [2]*vecOps{&avx2, &avx512}
}()

// The elementwise ops send a slice's tail (past its last multiple of 8)
// through the vector routine too, on a padded copy, so that an element's
// result never depends on where it falls in the slice: the scalar Go
// routines may differ in the last bit, and a softmax block's tail moves
// with the batch's longest text, which made a caption's embedding depend
// on the batch it was encoded in.

func expAVX2Ops(dst, src []float32) { runUnary(expAVX2, dst, src) }

func quickGELUAVX2Ops(out, in []float32) { vecUnary(quickGELUAVX2)(out, in) }

func quickGELUBackwardAVX2Ops(dIn, dOut, in []float32) {
	vecBackward(quickGELUBackwardAVX2)(dIn, dOut, in)
}

// vecUnary runs an out = f(in) routine over a whole slice (runUnary).
func vecUnary(f func(out, in *float32, n int)) func(out, in []float32) {
	return func(out, in []float32) { runUnary(f, out, in) }
}

// runUnary runs f over out and in, the tail on a padded copy.
func runUnary(f func(out, in *float32, n int), out, in []float32) {
	n := len(out) &^ 7
	if n > 0 {
		_ = in[n-1]
		f(&out[0], &in[0], n)
	}
	if tail := len(out) - n; tail > 0 {
		var buf [8]float32
		copy(buf[:], in[n:len(out)])
		f(&buf[0], &buf[0], 8)
		copy(out[n:], buf[:tail])
	}
}

// vecBackward runs a dIn += dOut·f'(in) routine over a whole slice, the
// tail on padded copies.
func vecBackward(f func(dIn, dOut, in *float32, n int)) func(dIn, dOut, in []float32) {
	return func(dIn, dOut, in []float32) {
		n := len(dIn) &^ 7
		if n > 0 {
			_, _ = dOut[n-1], in[n-1]
			f(&dIn[0], &dOut[0], &in[0], n)
		}
		if tail := len(dIn) - n; tail > 0 {
			var d, o, x [8]float32
			copy(d[:], dIn[n:])
			copy(o[:], dOut[n:len(dIn)])
			copy(x[:], in[n:len(dIn)])
			f(&d[0], &o[0], &x[0], 8)
			copy(dIn[n:], d[:tail])
		}
	}
}

func dropoutMaskAVX512(mask []float32, p, keep float32, seed, start uint64) {
	n := len(mask) &^ 7
	if n > 0 {
		dropoutAVX512(&mask[0], n, seed, start, p, keep)
	}
	dropoutMaskGo(mask[n:], p, keep, seed, start+uint64(n))
}

// layerNormAVX2 accumulates the statistics in float32 lanes, two passes
// (mean, then squared deviations); rows that are not a multiple of 8 take
// the Go path.
func layerNormAVX2(out, x, w, b []float32, eps float32) (float32, float32) {
	C := len(x)
	if C == 0 || C%8 != 0 {
		return layerNormGo(out, x, w, b, eps)
	}
	_, _, _ = out[C-1], w[C-1], b[C-1]
	mf := sumAVX2(&x[0], C) / float32(C)
	v := float64(sumSqDevAVX2(&x[0], C, mf)) / float64(C)
	rf := float32(1 / math.Sqrt(v+float64(eps)))
	lnNormAVX2(&out[0], &x[0], &w[0], &b[0], C, mf, rf)
	return mf, rf
}

// layerNormBackwardAVX2 runs one kernel for all three outputs, else one
// for each wanted one (dB's is a plain addition, in Go).
func layerNormBackwardAVX2(dIn, dW, dB, x, dOut, w []float32, m, r float32) {
	C := len(x)
	if C == 0 || C%8 != 0 {
		layerNormBackwardGo(dIn, dW, dB, x, dOut, w, m, r)
		return
	}
	_ = dOut[C-1]
	if dIn != nil {
		_, _ = dIn[C-1], w[C-1]
		sumD, sumDN := lnBackDotsAVX2(&x[0], &dOut[0], &w[0], C, m, r)
		inv := 1 / float32(C)
		sumD, sumDN = sumD*inv, sumDN*inv
		if dW != nil && dB != nil {
			_, _ = dW[C-1], dB[C-1]
			lnBackApplyAVX2(&dIn[0], &dW[0], &dB[0], &x[0], &dOut[0], &w[0], C, m, r, sumD, sumDN)
			return
		}
		lnBackInAVX2(&dIn[0], &x[0], &dOut[0], &w[0], C, m, r, sumD, sumDN)
	}
	if dW != nil {
		_ = dW[C-1]
		lnBackDWAVX2(&dW[0], &x[0], &dOut[0], C, m, r)
	}
	if dB != nil {
		addInto(dB, dOut)
	}
}

// The softmax row helpers take any length: the assembly does the longest
// multiple-of-8 prefix, Go the rest, continuing the same accumulator.

func maxAVX2Ops(x []float32) float32 {
	n := len(x) &^ 7
	if n == 0 {
		return maxGo(x)
	}
	m := maxAVX2(&x[0], n)
	for _, v := range x[n:] {
		m = max(m, v)
	}
	return m
}

func sumAVX2Ops(x []float32) float32 {
	n := len(x) &^ 7
	var s float32
	if n > 0 {
		s = sumAVX2(&x[0], n)
	}
	for _, v := range x[n:] {
		s += v
	}
	return s
}

func shiftScaleAVX2Ops(x []float32, m, a float32) {
	n := len(x) &^ 7
	if n > 0 {
		shiftScaleAVX2(&x[0], n, m, a)
	}
	shiftScaleGo(x[n:], m, a)
}

func scaleAVX2Ops(x []float32, a float32) {
	n := len(x) &^ 7
	if n > 0 {
		shiftScaleAVX2(&x[0], n, 0, a)
	}
	scaleGo(x[n:], a)
}

func dotAVX2Ops(a, b []float32) float32 {
	b = b[:len(a)]
	n := len(a) &^ 7
	var s float32
	if n > 0 {
		s = dotAVX2(&a[0], &b[0], n)
	}
	for i, v := range a[n:] {
		s += v * b[n+i]
	}
	return s
}

func softmaxBackAVX2Ops(d, p []float32, s, a float32) {
	p = p[:len(d)]
	n := len(d) &^ 7
	if n > 0 {
		softmaxBackAVX2(&d[0], &p[0], n, s, a)
	}
	softmaxBackGo(d[n:], p[n:], s, a)
}
