package cpu

import "math"

// Assembly in ln_amd64.s; n is a multiple of 8.

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

// lnVec reports whether rows of C values take the assembly path.
func lnVec(C int) bool { return hasAVX2FMA && C > 0 && C%8 == 0 }

// lnRowStats returns Σx and Σ(x-m)² for m = Σx/len(x), in float32 lanes.
func lnRowSum(x []float32) float32 { return sumAVX2(&x[0], len(x)) }

func lnRowSumSqDev(x []float32, m float32) float32 { return sumSqDevAVX2(&x[0], len(x), m) }

func lnRowNorm(out, x, w, b []float32, m, r float32) {
	_, _, _ = out[len(x)-1], w[len(x)-1], b[len(x)-1]
	lnNormAVX2(&out[0], &x[0], &w[0], &b[0], len(x), m, r)
}

func lnRowBackDots(x, dout, w []float32, m, r float32) (float32, float32) {
	_, _ = dout[len(x)-1], w[len(x)-1]
	return lnBackDotsAVX2(&x[0], &dout[0], &w[0], len(x), m, r)
}

func lnRowBackApply(dIn, dW, dB, x, dout, w []float32, m, r, sumD, sumDN float32) {
	n := len(x)
	_, _, _, _, _ = dIn[n-1], dW[n-1], dB[n-1], dout[n-1], w[n-1]
	lnBackApplyAVX2(&dIn[0], &dW[0], &dB[0], &x[0], &dout[0], &w[0], n, m, r, sumD, sumDN)
}

//go:noescape
func maxAVX2(x *float32, n int) float32

//go:noescape
func shiftScaleAVX2(x *float32, n int, m, a float32)

//go:noescape
func dotAVX2(a, b *float32, n int) float32

//go:noescape
func softmaxBackAVX2(d, p *float32, n int, s, a float32)

// The row helpers below take any length: the assembly does the longest
// multiple-of-8 prefix, Go the rest.

func rowMax(x []float32) float32 {
	n8 := len(x) &^ 7
	m := float32(math.Inf(-1))
	if hasAVX2FMA && n8 > 0 {
		m = maxAVX2(&x[0], n8)
	} else {
		n8 = 0
	}
	for _, v := range x[n8:] {
		m = max(m, v)
	}
	return m
}

func rowShiftScale(x []float32, m, a float32) {
	n8 := len(x) &^ 7
	if hasAVX2FMA && n8 > 0 {
		shiftScaleAVX2(&x[0], n8, m, a)
	} else {
		n8 = 0
	}
	for i, v := range x[n8:] {
		x[n8+i] = (v - m) * a
	}
}

func rowSum(x []float32) float32 {
	n8 := len(x) &^ 7
	var s float32
	if hasAVX2FMA && n8 > 0 {
		s = sumAVX2(&x[0], n8)
	} else {
		n8 = 0
	}
	for _, v := range x[n8:] {
		s += v
	}
	return s
}

func rowScale(x []float32, a float32) {
	n8 := len(x) &^ 7
	if hasAVX2FMA && n8 > 0 {
		shiftScaleAVX2(&x[0], n8, 0, a)
	} else {
		n8 = 0
	}
	for i := range x[n8:] {
		x[n8+i] *= a
	}
}

func rowDot(a, b []float32) float32 {
	b = b[:len(a)]
	n8 := len(a) &^ 7
	var s float32
	if hasAVX2FMA && n8 > 0 {
		s = dotAVX2(&a[0], &b[0], n8)
	} else {
		n8 = 0
	}
	for i, v := range a[n8:] {
		s += v * b[n8+i]
	}
	return s
}

// rowSoftmaxBack sets d = p·(d - s)·a.
func rowSoftmaxBack(d, p []float32, s, a float32) {
	p = p[:len(d)]
	n8 := len(d) &^ 7
	if hasAVX2FMA && n8 > 0 {
		softmaxBackAVX2(&d[0], &p[0], n8, s, a)
	} else {
		n8 = 0
	}
	for i, v := range d[n8:] {
		d[n8+i] = p[n8+i] * (v - s) * a
	}
}
