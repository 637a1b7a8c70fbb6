package cpu

import (
	"math"
	"testing"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/simd"
)

// ulps is |got - want| in units of the last place of float32 at want.
func ulps(got float32, want float64) float64 {
	if float64(got) == want {
		return 0
	}
	w := math.Abs(want)
	if w < 0x1p-126 {
		w = 0x1p-126 // denormal spacing
	}
	_, e := math.Frexp(w)
	return math.Abs(float64(got)-want) / math.Ldexp(1, e-24)
}

// denseRange is every 1/4096 from -lim to lim, and a sample of float32
// values near 0.
func denseRange(lim float64) []float32 {
	var xs []float32
	for x := -lim; x <= lim; x += 1.0 / 4096 {
		xs = append(xs, float32(x))
	}
	for e := -40; e < 0; e++ {
		xs = append(xs, float32(math.Ldexp(1.3, e)), float32(-math.Ldexp(1.3, e)))
	}
	return xs
}

type errStat struct{ ulp, ulp6, abs, at, absAt float64 }

func (s *errStat) add(got float32, want float64, x float32, countULP bool) {
	if countULP {
		u := ulps(got, want)
		if u > s.ulp {
			s.ulp, s.at = u, float64(x)
		}
		if math.Abs(want) >= 1e-6 {
			s.ulp6 = math.Max(s.ulp6, u)
		}
	}
	if d := math.Abs(float64(got) - want); d > s.abs {
		s.abs, s.absAt = d, float64(x)
	}
	if math.IsNaN(float64(got)) {
		s.abs, s.ulp = math.Inf(1), math.Inf(1)
	}
}

// TestGELUAccuracy measures the float32 activations of every level against
// float64 math (math.Erfc, math.Tanh): the normal CDF Φ in ulps where it is
// a normal float32 (|x| <= 9), the outputs and derivatives in ulps where
// |x| >= 1/64 and the value is not near 0 (see below), and in absolute
// error everywhere, over ±14 in steps
// of 1/4096 (x and the derivative's dOut = 1).
func TestGELUAccuracy(t *testing.T) {
	xs := denseRange(14)
	for _, l := range simd.Available() {
		v := opsFor(l)
		for _, act := range []backend.Activation{backend.GELU, backend.GELUTanh} {
			out, d := make([]float32, len(xs)), make([]float32, len(xs))
			v.activate[act](out, xs)
			v.activateBackward[act](d, ones(len(xs)), xs)
			var fwd, back errStat
			for i, x := range xs {
				xf := float64(x)
				var want, dwant float64
				switch act {
				case backend.GELU:
					want = 0.5 * xf * math.Erfc(-xf/math.Sqrt2)
					dwant = 0.5*math.Erfc(-xf/math.Sqrt2) + xf*math.Exp(-xf*xf/2)/math.Sqrt(2*math.Pi)
				case backend.GELUTanh:
					// 0.5(1 + tanh(u)) = σ(2u): float64's 1 + math.Tanh(u)
					// cancels to nothing from x ≈ -7 on.
					u := math.Sqrt(2/math.Pi) * (xf + 0.044715*xf*xf*xf)
					if th := math.Tanh(u); math.Abs(th) < 0.5 {
						want = 0.5 * xf * (1 + th) // tanh itself, where it does not cancel
					} else {
						want = xf / (1 + math.Exp(-2*u))
					}
					s := 1 / (1 + math.Exp(-2*u))
					dwant = s + xf*s*(1-s)*2*math.Sqrt(2/math.Pi)*(1+3*0.044715*xf*xf)
				}
				// Ulps of the outputs are counted down to 1e-12: further
				// out in the negative tail the float32 rounding of the
				// exponent's argument (≈ x²/2 or 1.6x + 0.07x³) is
				// magnified, as in any float32 evaluation, on values that
				// are 0 to within 1e-12 (absolute error still counts).
				fwd.add(out[i], want, x, math.Abs(xf) >= 1.0/64 && math.Abs(want) >= 1e-12)
				// The derivatives are sums that cancel (gelu's crosses 0
				// at x ≈ -0.75): their error is absolute only.
				back.add(d[i], dwant, x, false)
			}
			t.Logf("%v %v: output max %.2f ulp where |gelu| >= 1e-6, %.2f ulp (at %g) where >= 1e-12, max abs %.2e (at %g); derivative max abs %.2e (at %g)",
				l, act, fwd.ulp6, fwd.ulp, fwd.at, fwd.abs, fwd.absAt, back.abs, back.absAt)
			if !(fwd.ulp6 <= 24 && fwd.ulp <= 64 && fwd.abs <= 1e-6 && back.abs <= 5e-7) {
				t.Errorf("%v %v: beyond the bounds (output 24 ulp down to 1e-6, 64 ulp down to 1e-12, 1e-6 abs; derivative 5e-7 abs)", l, act)
			}
		}
	}
	// Φ itself, where it is a normal float32.
	var cdf errStat
	for _, x := range denseRange(9) {
		p, _ := normCDF(x)
		cdf.add(p, 0.5*math.Erfc(-float64(x)/math.Sqrt2), x, true)
	}
	t.Logf("Go normCDF: max %.2f ulp (at %g), max abs %.2e", cdf.ulp, cdf.at, cdf.abs)
	if !(cdf.ulp <= 8) {
		t.Errorf("normCDF: %.2f ulp, want <= 8", cdf.ulp)
	}
}

func ones(n int) []float32 {
	o := make([]float32, n)
	for i := range o {
		o[i] = 1
	}
	return o
}
