package cpu

import (
	"math"

	"github.com/clipline/clipline/internal/simd"
)

// vecOps are the row and element loops of the CPU operations: one table
// per simd level, chosen once per Backend as the GEMM micro-kernel is. The
// Go table is the portable code; an assembly entry runs the longest
// multiple-of-8 prefix and leaves the tail to the same Go arithmetic.
type vecOps struct {
	exp func(dst, src []float32) // dst = expf(src); dst may be src
	// activate[act] sets out = act(x); activateBackward[act] adds
	// dOut·act'(x) to dIn.
	activate         [numActivations]func(out, in []float32)
	activateBackward [numActivations]func(dIn, dOut, in []float32)
	dropoutMask      func(mask []float32, p, keep float32, seed, start uint64)
	// layerNorm sets out = (x-mean)·rstd·w + b for one row and returns its
	// statistics.
	layerNorm func(out, x, w, b []float32, eps float32) (mean, rstd float32)
	// layerNormBackward adds one row's contributions to dIn, dW and dB;
	// nil ones are not computed.
	layerNormBackward func(dIn, dW, dB, x, dOut, w []float32, mean, rstd float32)
	// Softmax rows (attention).
	max         func(x []float32) float32
	sum         func(x []float32) float32
	shiftScale  func(x []float32, m, a float32) // x = (x-m)·a
	scale       func(x []float32, a float32)
	dot         func(a, b []float32) float32
	softmaxBack func(d, p []float32, s, a float32) // d = p·(d-s)·a
}

var goOps = vecOps{
	exp:               expGo,
	activate:          [numActivations]func(out, in []float32){quickGELUGo, geluGo, geluTanhGo},
	activateBackward:  [numActivations]func(dIn, dOut, in []float32){quickGELUBackwardGo, geluBackwardGo, geluTanhBackwardGo},
	dropoutMask:       dropoutMaskGo,
	layerNorm:         layerNormGo,
	layerNormBackward: layerNormBackwardGo,
	max:               maxGo,
	sum:               sumGo,
	shiftScale:        shiftScaleGo,
	scale:             scaleGo,
	dot:               dotGo,
	softmaxBack:       softmaxBackGo,
}

// opsFor returns level l's table; l must be available.
func opsFor(l simd.Level) *vecOps {
	if l == simd.Go {
		return &goOps
	}
	return asmOps[l-1]
}

func expGo(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] = expf(v)
	}
}

func quickGELUGo(out, in []float32) {
	in = in[:len(out)]
	for i, v := range in {
		out[i] = v * sigmoid(1.702*v)
	}
}

func quickGELUBackwardGo(dIn, dOut, in []float32) {
	dOut = dOut[:len(dIn)]
	in = in[:len(dIn)]
	for i, v := range in {
		s := sigmoid(1.702 * v)
		dIn[i] += dOut[i] * (s + 1.702*v*s*(1-s))
	}
}

func dropoutMaskGo(mask []float32, p, keep float32, seed, start uint64) {
	for i := range mask {
		mask[i] = keep
		if DropoutUniform(seed, start+uint64(i)) < p {
			mask[i] = 0
		}
	}
}

// layerNormGo accumulates the statistics in float64.
func layerNormGo(out, x, w, b []float32, eps float32) (float32, float32) {
	C := len(x)
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	m := s / float64(C)
	var ss float64
	for _, v := range x {
		d := float64(v) - m
		ss += d * d
	}
	rs := 1 / math.Sqrt(ss/float64(C)+float64(eps))
	mf, rf := float32(m), float32(rs)
	out, w, b = out[:C], w[:C], b[:C]
	for i, v := range x {
		out[i] = (v-mf)*rf*w[i] + b[i]
	}
	return mf, rf
}

func layerNormBackwardGo(dIn, dW, dB, x, dOut, w []float32, mf, rf float32) {
	dOut, w = dOut[:len(x)], w[:len(x)]
	inv := 1 / float32(len(x))
	var sumD, sumDN float32
	for i, v := range x {
		n := (v - mf) * rf
		dn := w[i] * dOut[i]
		sumD += dn
		sumDN += dn * n
	}
	sumD *= inv
	sumDN *= inv
	if dB != nil {
		addInto(dB, dOut)
	}
	if dW != nil {
		dW := dW[:len(x)]
		for i, v := range x {
			dW[i] += (v - mf) * rf * dOut[i]
		}
	}
	if dIn != nil {
		dIn := dIn[:len(x)]
		for i, v := range x {
			n := (v - mf) * rf
			dIn[i] += (w[i]*dOut[i] - sumD - n*sumDN) * rf
		}
	}
}

// addInto sets dst += src.
func addInto(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += v
	}
}

func maxGo(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	return m
}

func sumGo(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += v
	}
	return s
}

func shiftScaleGo(x []float32, m, a float32) {
	for i, v := range x {
		x[i] = (v - m) * a
	}
}

func scaleGo(x []float32, a float32) {
	for i := range x {
		x[i] *= a
	}
}

func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s float32
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

func softmaxBackGo(d, p []float32, s, a float32) {
	p = p[:len(d)]
	for i, v := range d {
		d[i] = p[i] * (v - s) * a
	}
}
