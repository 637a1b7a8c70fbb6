package cpu

import "math"

// The GELU activations in float32, branch-free as the AVX2 routines
// (internal/asmgen's vec.go) compute them lane by lane, so the two agree to
// the last bit or two and their errors are measured together (gelu_test.go).
//
// Φ(x), the normal CDF, is 0.5·erfc(-x/√2). erfc(z) for z >= 0 is
// Numerical Recipes' erfcc, t·exp(-z² + c(t)) with t = 1/(1 + z/2) and c a
// degree-9 polynomial (fractional error under 1.2e-7 for every z). Its
// exponent is split so that the tail keeps its relative precision: z² =
// x²/2 is taken exactly as hi + lo (an FMA gives x²'s rounding error) and
// e^(-z²+c) = e^(-hi)·e^(c-lo), so no rounding of a large exponent
// scales the result. Φ(x) for x >= 0 is 1 - Φ(-x). Beyond |x| = cdfEdge
// Φ is exactly 0 or 1 in float32 (Φ(-13.5) ≈ 7e-42), and the clamp keeps
// x² finite.
//
// gelu_pytorch_tanh's 0.5x·(1 + tanh(u)) is x·σ(2u): the same function
// without tanh's cancellation near 1 + tanh = 0, so it keeps its relative
// precision for negative x as QuickGELU's x·σ(1.702x) does.

const (
	cdfEdge      = 13.5
	halfInvSqrt2 = 0.35355339059327376 // 1/(2√2)
	invSqrt2π    = 0.39894228040143268
	// v = 2u = x·(tanhC1 + tanhC2·x²), u = √(2/π)·(x + 0.044715x³).
	tanhC1 = 1.5957691216057308     // 2·√(2/π)
	tanhC2 = 0.0713548162726009     // 2·√(2/π)·0.044715
	tanhD2 = 3 * 0.0713548162726009 // dv/dx = tanhC1 + tanhD2·x²
	// Beyond |x| = tanhEdge gelu_pytorch_tanh' is 0 or 1 in float32; the
	// backward clamps x there so that x³ stays finite.
	tanhEdge = 10
)

// erfcPoly is c(t) of erfc(z) = t·exp(-z² + c(t)), highest degree first.
var erfcPoly = [...]float32{
	0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807,
	-0.18628806, 0.09678418, 0.37409196, 1.00002368, -1.26551223,
}

// normCDF returns Φ(x) and φ(x) = e^(-x²/2)/√(2π).
func normCDF(x float32) (cdf, pdf float32) {
	ax := min(abs32(x), cdfEdge)
	t := 1 / fma32(ax, halfInvSqrt2, 1) // 1/(1 + z/2), z = |x|/√2
	c := erfcPoly[0]
	for _, k := range erfcPoly[1:] {
		c = fma32(c, t, k)
	}
	h := ax * ax
	l := fma32(ax, ax, -h)
	e := expf(-0.5 * h)
	q := 0.5 * t * e * expf(fma32(-0.5, l, c)) // Φ(-|x|)
	pdf = e * fma32(-0.5, l, 1) * invSqrt2π    // e^(-lo) ≈ 1 - lo
	if abs32(x) >= cdfEdge {
		q, pdf = 0, 0
	}
	if x < 0 {
		return q, pdf
	}
	return 1 - q, pdf
}

func geluGo(out, in []float32) {
	in = in[:len(out)]
	for i, v := range in {
		p, _ := normCDF(v)
		out[i] = v * p
	}
}

// geluBackwardGo: gelu'(x) = Φ(x) + x·φ(x).
func geluBackwardGo(dIn, dOut, in []float32) {
	dOut = dOut[:len(dIn)]
	in = in[:len(dIn)]
	for i, v := range in {
		p, d := normCDF(v)
		dIn[i] += dOut[i] * fma32(v, d, p)
	}
}

func geluTanhGo(out, in []float32) {
	in = in[:len(out)]
	for i, v := range in {
		out[i] = v * sigmoid(v*fma32(tanhC2, v*v, tanhC1))
	}
}

// geluTanhBackwardGo: d/dx x·σ(v) = σ + x·σ·(1-σ)·v'(x), with σ·(1-σ) =
// σ²·e^(-v): 1-σ would cancel to a multiple of 2^-24 where σ nears 1.
func geluTanhBackwardGo(dIn, dOut, in []float32) {
	dOut = dOut[:len(dIn)]
	in = in[:len(dIn)]
	for i, v := range in {
		v = max(-tanhEdge, min(v, tanhEdge))
		x2 := v * v
		e := expf(-v * fma32(tanhC2, x2, tanhC1))
		s := 1 / (1 + e)
		dv := fma32(tanhD2, x2, tanhC1)
		dIn[i] += dOut[i] * fma32(v*s*s*e, dv, s)
	}
}

func abs32(x float32) float32 { return math.Float32frombits(math.Float32bits(x) &^ (1 << 31)) }

// fma32 is x·y + z rounded once, as VFMADD does.
func fma32(x, y, z float32) float32 {
	return float32(math.FMA(float64(x), float64(y), float64(z)))
}
