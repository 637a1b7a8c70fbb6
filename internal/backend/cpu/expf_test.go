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
