package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/clipline/clipline/internal/simd"
)

// kernels lists every micro-kernel this machine can run.
func kernels() []*simd.Kernel {
	var ks []*simd.Kernel
	for _, l := range simd.Available() {
		ks = append(ks, simd.KernelFor(l))
	}
	return ks
}

func naiveGemm(m, n, k int, a, b matrix) []float64 {
	c := make([]float64, m*n)
	for i := range m {
		for j := range n {
			s := 0.0
			for p := range k {
				s += float64(a.d[i*a.rs+p*a.cs]) * float64(b.d[p*b.rs+j*b.cs])
			}
			c[i*n+j] = s
		}
	}
	return c
}

// TestGemmKernels runs the blocked GEMM with every kernel on every stride
// layout Linear uses (and a general one), at sizes around the tile and
// block edges, accumulating into a C with a leading dimension wider than n.
func TestGemmKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	rv := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.Float64()*2 - 1)
		}
		return v
	}
	shapes := []struct{ m, n, k int }{
		{1, 1, 1}, {6, 16, 1}, {7, 17, 3}, {5, 15, 0}, {12, 32, 256}, {13, 33, 257},
		{97, 50, 300}, {200, 780, 40}, {96, 16, 513},
	}
	for _, kern := range kernels() {
		for _, workers := range []int{1, 2, 5} {
			be := NewLevel(workers, kern.Level)
			for _, s := range shapes {
				for li, lay := range []string{"NT", "NN", "TN", "general"} {
					ad, bd := rv(s.m*s.k+3), rv(s.k*s.n+3)
					var a, b matrix
					switch lay {
					case "NT": // in·Wᵀ
						a, b = matrix{ad, s.k, 1}, matrix{bd, 1, s.k}
					case "NN": // dOut·W
						a, b = matrix{ad, s.k, 1}, matrix{bd, s.n, 1}
					case "TN": // dOutᵀ·in
						a, b = matrix{ad, 1, s.m}, matrix{bd, s.n, 1}
					default: // neither stride 1
						ad, bd = rv(2*s.m*s.k+3), rv(2*s.k*s.n+3)
						a, b = matrix{ad, 2 * s.k, 2}, matrix{bd, 2, 2 * s.k}
					}
					want := naiveGemm(s.m, s.n, s.k, a, b)
					ldc := s.n + 3
					c := rv(s.m*ldc + 5)
					c0 := append([]float32(nil), c...)
					accumulate := li%2 == 0
					var bias []float32
					if li == 1 {
						bias = rv(s.n)
					}
					be.gemm(s.m, s.n, s.k, a, b, c, ldc, accumulate, bias)
					name := fmt.Sprintf("%s w%d %s m%d n%d k%d", kern.Name, workers, lay, s.m, s.n, s.k)
					for i := range s.m {
						for j := range ldc {
							got := c[i*ldc+j]
							if j >= s.n {
								if got != c0[i*ldc+j] {
									t.Fatalf("%s: wrote C[%d,%d] past n", name, i, j)
								}
								continue
							}
							w := want[i*s.n+j]
							if accumulate {
								w += float64(c0[i*ldc+j])
							} else if bias != nil {
								w += float64(bias[j])
							}
							if !(math.Abs(float64(got)-w) <= 1e-5*(1+math.Sqrt(float64(s.k)))) {
								t.Fatalf("%s: C[%d,%d] = %g, want %g", name, i, j, got, w)
							}
						}
					}
					for i := s.m * ldc; i < len(c); i++ {
						if c[i] != c0[i] {
							t.Fatalf("%s: wrote past C", name)
						}
					}
				}
			}
		}
	}
}

// BenchmarkKernel measures one micro-kernel call on L1-resident panels
// (kc = 256), single-threaded: the ceiling for the blocked GEMM.
func BenchmarkKernel(b *testing.B) {
	for _, kern := range kernels() {
		b.Run(kern.Name, func(b *testing.B) {
			kc := kcBlock
			a := make([]float32, kern.MR*kc)
			bb := make([]float32, kern.NR*kc)
			c := make([]float32, kern.MR*kern.NR)
			for i := range a {
				a[i] = 1e-3
			}
			for i := range bb {
				bb[i] = 1e-3
			}
			for b.Loop() {
				kern.Tile(kc, a, bb, c, kern.NR, true)
			}
			b.ReportMetric(2*float64(kern.MR*kern.NR*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
