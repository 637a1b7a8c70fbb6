package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestExpf(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	check := func(x float32) {
		got := float64(expf(x))
		want := math.Exp(float64(x))
		if want < math.SmallestNonzeroFloat32*(1<<23) { // below float32 normals
			if !(got <= 2*want) {
				t.Fatalf("expf(%g) = %g, want ~%g", x, got, want)
			}
			return
		}
		if rel := math.Abs(got-want) / want; !(rel <= 2.5e-7) {
			t.Fatalf("expf(%g) = %g, want %g (relative error %.3g)", x, got, want, rel)
		}
	}
	for _, x := range []float32{0, 1, -1, 0.5, -0.5, 0.34657359, -0.34657359, 10, -10, 88, -87, -87.3} {
		check(x)
	}
	for range 1_000_000 {
		check(float32(rng.Float64()*175 - 87))
	}
	if !math.IsInf(float64(expf(89)), 1) || expf(-88) != 0 || expf(-1000) != 0 {
		t.Fatalf("expf out of range: %g %g", expf(89), expf(-88))
	}
	if !math.IsNaN(float64(expf(float32(math.NaN())))) {
		t.Fatalf("expf(NaN) is not NaN")
	}
}

// TestVec compares the assembly vector routines (where present) with the
// scalar Go code, element by element, on lengths with and without tails.
func TestVec(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, n := range []int{0, 1, 7, 8, 9, 63, 1000} {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.Float64()*40 - 20)
		}
		if n > 8 {
			x[0], x[1], x[2], x[3] = -200, 200, 0, -60
		}
		dOut := make([]float32, n)
		for i := range dOut {
			dOut[i] = float32(rng.Float64()*2 - 1)
		}
		e := make([]float32, n)
		done := expVec(e, x)
		for i := range x[:done] {
			want := expf(min(max(x[i], -87.33654), 88.72283))
			// Equal passes (exp(88.72283) is +Inf on both sides); NaN fails.
			if d := math.Abs(float64(e[i] - want)); e[i] != want && !(d <= 2.5e-7*float64(want)) {
				t.Fatalf("expVec n=%d [%d] exp(%g) = %g, scalar %g", n, i, x[i], e[i], want)
			}
		}
		g := make([]float32, n)
		done = quickGELUVec(g, x)
		for i := range x[:done] {
			want := x[i] * sigmoid(1.702*x[i])
			if d := math.Abs(float64(g[i] - want)); !(d <= 1e-6*(1+math.Abs(float64(want)))) {
				t.Fatalf("quickGELUVec n=%d [%d] f(%g) = %g, scalar %g", n, i, x[i], g[i], want)
			}
		}
		dIn := make([]float32, n)
		for i := range dIn {
			dIn[i] = 0.25
		}
		done = quickGELUBackwardVec(dIn, dOut, x)
		for i := range x[:done] {
			s := sigmoid(1.702 * x[i])
			want := 0.25 + dOut[i]*(s+1.702*x[i]*s*(1-s))
			if d := math.Abs(float64(dIn[i] - want)); !(d <= 1e-6*(1+math.Abs(float64(want)))) {
				t.Fatalf("quickGELUBackwardVec n=%d [%d] at %g: %g, scalar %g", n, i, x[i], dIn[i], want)
			}
		}
		if hasAVX2FMA && done != n&^7 {
			t.Fatalf("vector routines did %d of %d", done, n)
		}
	}
}

func TestDropoutVec(t *testing.T) {
	for _, c := range []struct {
		n           int
		p           float32
		seed, start uint64
	}{{0, 0.1, 1, 0}, {8, 0.5, 2, 3}, {1001, 0.1, 42, 0}, {64, 0.3, 1<<63 + 5, 1<<40 - 17}, {40, 0, 9, 9}, {40, 1, 9, 9}} {
		keep := float32(0)
		if c.p < 1 {
			keep = 1 / (1 - c.p)
		}
		mask := make([]float32, c.n+1)
		mask[c.n] = -1
		done := dropoutVec(mask[:c.n], c.p, keep, c.seed, c.start)
		if hasAVX512DQ && done != c.n&^7 {
			t.Fatalf("%+v: did %d", c, done)
		}
		for i := range done {
			want := keep
			if DropoutUniform(c.seed, c.start+uint64(i)) < c.p {
				want = 0
			}
			if mask[i] != want {
				t.Fatalf("%+v: mask[%d] = %g, want %g", c, i, mask[i], want)
			}
		}
		if mask[c.n] != -1 {
			t.Fatalf("%+v: wrote past the end", c)
		}
	}
}
