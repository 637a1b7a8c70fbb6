package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func randSlice(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = rng.Float32()*2 - 1
	}
	return v
}

// Every kernel agrees with a float64 reference; Row matches Tile bit for
// bit; accumulating adds exactly the tile that setting writes; nothing
// outside the tile is written; and the assembly kernels (all FMA) agree
// with each other bit for bit at every depth.
func TestKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kc := range []int{0, 1, 2, 3, 7, 64, 513} {
		// Shared inputs: 12 rows × 32 columns, so each kernel reads the
		// top-left MR×NR of them.
		a, b := randSlice(rng, 12*kc), randSlice(rng, 32*kc)
		asm := map[[2]int]float32{} // (i, j) -> the assembly kernels' value
		for _, l := range Available() {
			k := KernelFor(l)
			name := fmt.Sprintf("%s kc=%d", k.Name, kc)
			ap := make([]float32, k.MR*kc)
			bp := make([]float32, k.NR*kc)
			PackPanels(ap, a, kc, 1, 0, k.MR, 0, kc, k.MR)
			PackPanels(bp, b, kc, 1, 0, k.NR, 0, kc, k.NR)
			const pad = 3
			ldc := k.NR + pad
			set := randSlice(rng, k.MR*ldc)
			before := append([]float32(nil), set...)
			k.Tile(kc, ap, bp, set, ldc, false)
			acc := randSlice(rng, k.MR*ldc)
			c0 := append([]float32(nil), acc...)
			k.Tile(kc, ap, bp, acc, ldc, true)
			row := make([]float32, k.NR)
			for i := range k.MR {
				k.Row(kc, a[i*kc:(i+1)*kc], bp, row)
				for j := range ldc {
					at := i*ldc + j
					if j >= k.NR {
						if set[at] != before[at] || acc[at] != c0[at] {
							t.Fatalf("%s: wrote C[%d,%d] outside the tile", name, i, j)
						}
						continue
					}
					var ref float64
					for p := range kc {
						ref += float64(a[i*kc+p]) * float64(b[j*kc+p])
					}
					got := set[at]
					if d := math.Abs(float64(got) - ref); !(d <= 1e-5*float64(kc+1)) {
						t.Fatalf("%s (%d,%d): %g, float64 reference %g", name, i, j, got, ref)
					}
					if math.Float32bits(row[j]) != math.Float32bits(got) {
						t.Fatalf("%s (%d,%d): Row %g != Tile %g", name, i, j, row[j], got)
					}
					if sum := c0[at] + got; math.Float32bits(acc[at]) != math.Float32bits(sum) {
						t.Fatalf("%s (%d,%d): accumulated %g, want %g + %g", name, i, j, acc[at], c0[at], got)
					}
					if l == Go {
						continue
					}
					if v, ok := asm[[2]int{i, j}]; ok && math.Float32bits(v) != math.Float32bits(got) {
						t.Fatalf("%s (%d,%d): %g, another assembly kernel %g", name, i, j, got, v)
					}
					asm[[2]int{i, j}] = got
				}
			}
		}
	}
}

// PackPanels matches the definition on every stride layout the GEMM uses
// and on panel widths of every kernel, with and without a ragged last panel.
func TestPackPanels(t *testing.T) {
	for _, w := range []int{4, 6, 12, 16, 32} {
		for _, n := range []int{1, w, 2*w + 1} {
			for _, kc := range []int{1, 7, 8, 9, 77} {
				for _, lay := range []struct{ ls, ps int }{{kc + 5, 1}, {1, n + 3}, {2 * (kc + 1), 2}} {
					l0, p0 := 2, 1
					d := make([]float32, (l0+n)*lay.ls+(p0+kc)*lay.ps)
					for i := range d {
						d[i] = float32(i + 1)
					}
					np := RoundUp(n, w)
					dst := make([]float32, np*kc+1)
					for i := range dst {
						dst[i] = -1
					}
					PackPanels(dst, d, lay.ls, lay.ps, l0, n, p0, kc, w)
					for q := range np / w {
						for p := range kc {
							for j := range w {
								want := float32(0)
								if l := q*w + j; l < n {
									want = d[(l0+l)*lay.ls+(p0+p)*lay.ps]
								}
								if got := dst[q*w*kc+p*w+j]; got != want {
									t.Fatalf("w=%d n=%d kc=%d strides %+v: panel %d [%d*w+%d] = %g, want %g", w, n, kc, lay, q, p, j, got, want)
								}
							}
						}
					}
					if dst[np*kc] != -1 {
						t.Fatalf("w=%d n=%d kc=%d: wrote past the panels", w, n, kc)
					}
				}
			}
		}
	}
}

func TestRoundUp(t *testing.T) {
	for _, c := range [][3]int{{0, 4, 0}, {1, 4, 4}, {4, 4, 4}, {5, 4, 8}, {240, 12, 240}, {241, 12, 252}} {
		if got := RoundUp(c[0], c[1]); got != c[2] {
			t.Errorf("RoundUp(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}

func TestChoose(t *testing.T) {
	for _, l := range Available() {
		if got := choose(l.String()); got != l {
			t.Errorf("choose(%q) = %v", l.String(), got)
		}
	}
	if got := choose(""); got != best {
		t.Errorf("choose(\"\") = %v, want the best, %v", got, best)
	}
	if got := choose("sse9"); got != best {
		t.Errorf("choose(\"sse9\") = %v, want the best, %v", got, best)
	}
}

// Short tiles compute Tile's first m rows bit for bit, setting or adding,
// from A packed m wide, and write nothing outside those rows.
func TestShortTiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, l := range Available() {
		k := KernelFor(l)
		if k.ShortStep == 0 {
			continue
		}
		for _, kc := range []int{0, 1, 7, 64, 513} {
			a, b := randSlice(rng, k.MR*kc), randSlice(rng, k.NR*kc)
			ap := make([]float32, k.MR*kc)
			bp := make([]float32, k.NR*kc)
			PackPanels(ap, a, kc, 1, 0, k.MR, 0, kc, k.MR)
			PackPanels(bp, b, kc, 1, 0, k.NR, 0, kc, k.NR)
			ldc := k.NR + 3
			full := make([]float32, k.MR*ldc)
			k.Tile(kc, ap, bp, full, ldc, false)
			for m := k.ShortStep; m < k.MR; m += k.ShortStep {
				name := fmt.Sprintf("%s m=%d kc=%d", k.Name, m, kc)
				am := make([]float32, m*kc)
				PackPanels(am, a, kc, 1, 0, m, 0, kc, m)
				set := randSlice(rng, k.MR*ldc)
				before := append([]float32(nil), set...)
				k.Short(m, kc, am, bp, set, ldc, false)
				acc := randSlice(rng, k.MR*ldc)
				c0 := append([]float32(nil), acc...)
				k.Short(m, kc, am, bp, acc, ldc, true)
				for i := range k.MR {
					for j := range ldc {
						at := i*ldc + j
						if i >= m || j >= k.NR {
							if set[at] != before[at] || acc[at] != c0[at] {
								t.Fatalf("%s: wrote C[%d,%d] outside the tile", name, i, j)
							}
							continue
						}
						if math.Float32bits(set[at]) != math.Float32bits(full[at]) {
							t.Fatalf("%s (%d,%d): %g, Tile %g", name, i, j, set[at], full[at])
						}
						if sum := c0[at] + full[at]; math.Float32bits(acc[at]) != math.Float32bits(sum) {
							t.Fatalf("%s (%d,%d): accumulated %g, want %g", name, i, j, acc[at], sum)
						}
					}
				}
			}
		}
	}
}
