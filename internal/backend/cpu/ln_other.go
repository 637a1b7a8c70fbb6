//go:build !amd64

package cpu

import "math"

func lnVec(C int) bool { return false }

// Never called: lnVec is false.
func lnRowSum(x []float32) float32                   { panic("unreachable") }
func lnRowSumSqDev(x []float32, m float32) float32   { panic("unreachable") }
func lnRowNorm(out, x, w, b []float32, m, r float32) { panic("unreachable") }
func lnRowBackDots(x, dout, w []float32, m, r float32) (float32, float32) {
	panic("unreachable")
}
func lnRowBackApply(dIn, dW, dB, x, dout, w []float32, m, r, sumD, sumDN float32) {
	panic("unreachable")
}

func rowMax(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	return m
}

func rowShiftScale(x []float32, m, a float32) {
	for i, v := range x {
		x[i] = (v - m) * a
	}
}

func rowSum(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += v
	}
	return s
}

func rowScale(x []float32, a float32) {
	for i := range x {
		x[i] *= a
	}
}

func rowDot(a, b []float32) float32 {
	b = b[:len(a)]
	var s float32
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func rowSoftmaxBack(d, p []float32, s, a float32) {
	p = p[:len(d)]
	for i, v := range d {
		d[i] = p[i] * (v - s) * a
	}
}
