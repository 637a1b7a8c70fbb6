package metrics

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The kernels must agree with a float64 reference, and every path that can
// compute a given pair (tile positions, the single-row kernel) bit for bit.
func TestKernelsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, d := range []int{1, 7, 64, 513} {
		a := make([]float32, mr*d)
		b := make([]float32, nr*d)
		for i := range a {
			a[i] = rng.Float32()*2 - 1
		}
		for i := range b {
			b[i] = rng.Float32()*2 - 1
		}
		ap := make([]float32, mr*d)
		bp := make([]float32, nr*d)
		packPanels(ap, a, mr, d, mr)
		packPanels(bp, b, nr, d, nr)
		kinds := []string{"go"}
		if hasAVX2 {
			kinds = append(kinds, "avx2")
		}
		if hasAVX512 {
			kinds = append(kinds, "avx512")
		}
		var asmTile []float32
		for _, kind := range kinds {
			c := make([]float32, mr*40)
			tile(kind, ap, bp, d, c, 40)
			for i := range mr {
				var row [nr]float32
				rowScores(kind, a[i*d:(i+1)*d], bp, d, &row)
				for j := range nr {
					var ref float64
					for k := range d {
						ref += float64(a[i*d+k]) * float64(b[j*d+k])
					}
					got := c[i*40+j]
					if math.Abs(float64(got)-ref) > 1e-5*float64(d) {
						t.Fatalf("%s d=%d (%d,%d): %g, float64 reference %g", kind, d, i, j, got, ref)
					}
					if row[j] != got {
						t.Fatalf("%s d=%d (%d,%d): row kernel %g != tile %g", kind, d, i, j, row[j], got)
					}
				}
			}
			if kind != "go" {
				if asmTile != nil {
					for i := range asmTile {
						if asmTile[i] != c[i] {
							t.Fatalf("avx2 and avx512 tiles differ at %d: %g vs %g", i, asmTile[i], c[i])
						}
					}
				}
				asmTile = c
			}
		}
		t.Logf("d=%d: kernels %v agree", d, kinds)
	}
}
