package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// bf16Round is x rounded to bf16, as a float64.
func bf16Round(x float32) float64 { return float64(FromBF16(ToBF16(x))) }

func TestToBF16(t *testing.T) {
	for _, c := range []struct {
		in   float32
		want uint16
	}{
		{1, 0x3f80}, {-2, 0xc000},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie, even stays
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie, odd rounds up
		{math.Float32frombits(0x3f808001), 0x3f81},
		{float32(math.Inf(1)), 0x7f80},
		{math.Float32frombits(0x7f7fffff), 0x7f80}, // max float rounds to +Inf
	} {
		if got := ToBF16(c.in); got != c.want {
			t.Errorf("ToBF16(%#x) = %#x, want %#x", math.Float32bits(c.in), got, c.want)
		}
	}
	if h := ToBF16(float32(math.NaN())); !math.IsNaN(float64(FromBF16(h))) {
		t.Errorf("NaN became %#x", h)
	}
}

// PackBF16Panels agrees with its definition, element by element, for
// both source layouts, odd depths and ragged last panels.
func TestPackBF16Panels(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct{ n, kc, w int }{{5, 7, 4}, {32, 64, 32}, {13, 1, 12}, {16, 50, 16}, {3, 2, 4}} {
		const l0, p0 = 2, 3
		rows, cols := l0+c.n+1, p0+c.kc+2
		d := randSlice(rng, rows*cols)
		for _, lay := range []struct{ ls, ps int }{{cols, 1}, {1, rows}} {
			if lay.ls == 1 {
				d = randSlice(rng, rows*cols) // element (l, p) at l + p*rows
			}
			kp := BF16Depth(c.kc)
			dst := make([]uint32, RoundUp(c.n, c.w)*kp)
			for i := range dst {
				dst[i] = 0xdeadbeef
			}
			PackBF16Panels(dst, d, lay.ls, lay.ps, l0, c.n, p0, c.kc, c.w)
			elem := func(l, p int) uint32 {
				if l >= c.n || p >= c.kc {
					return 0
				}
				return uint32(ToBF16(d[(l0+l)*lay.ls+(p0+p)*lay.ps]))
			}
			for q := 0; q*c.w < c.n; q++ {
				for p := range kp {
					for j := range c.w {
						l := q*c.w + j
						want := elem(l, 2*p) | elem(l, 2*p+1)<<16
						if got := dst[q*c.w*kp+p*c.w+j]; got != want {
							t.Fatalf("%+v ls=%d: line %d pair %d: %#x, want %#x", c, lay.ls, l, p, got, want)
						}
					}
				}
			}
		}
	}
}

// Every bf16 kernel agrees with the Go reference (the AVX2 one bit for
// bit, VDPBF16PS within fp32 accumulation rounding), and the reference
// agrees with a float64 sum of the bf16-rounded products; accumulating
// adds exactly the tile that setting writes; nothing outside the tile is
// written.
func TestBF16Kernels(t *testing.T) {
	for _, l := range BF16Available() {
		if l == AVX512 {
			continue // TestBF16KernelVDPBF16PS
		}
		testBF16Kernel(t, BF16KernelFor(l), true)
	}
}

// TestBF16KernelVDPBF16PS runs the VDPBF16PS kernel; it needs a CPU with
// avx512_bf16 and is skipped elsewhere (no CI requirement: CI machines
// may lack it).
func TestBF16KernelVDPBF16PS(t *testing.T) {
	if bestBF16 < AVX512 {
		t.Skip("skipping the VDPBF16PS kernel test: this CPU (or build) has no avx512_bf16")
	}
	testBF16Kernel(t, BF16KernelFor(AVX512), false)
}

func testBF16Kernel(t *testing.T, k *BF16Kernel, exact bool) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	ref := BF16KernelFor(Go)
	for _, kc := range []int{0, 1, 2, 3, 7, 64, 129, 513} {
		name := fmt.Sprintf("%s kc=%d", k.Name, kc)
		a, b := randSlice(rng, k.MR*kc), randSlice(rng, k.NR*kc)
		kp := BF16Depth(kc)
		ap, bp := make([]uint32, k.MR*kp), make([]uint32, k.NR*kp)
		PackBF16Panels(ap, a, kc, 1, 0, k.MR, 0, kc, k.MR)
		PackBF16Panels(bp, b, kc, 1, 0, k.NR, 0, kc, k.NR)
		const pad = 3
		ldc := k.NR + pad
		set := randSlice(rng, k.MR*ldc)
		before := append([]float32(nil), set...)
		k.Tile(kp, ap, bp, set, ldc, false)
		acc := randSlice(rng, k.MR*ldc)
		c0 := append([]float32(nil), acc...)
		k.Tile(kp, ap, bp, acc, ldc, true)
		for i := range k.MR {
			// The reference's 4×4 tiles over row i's group and every column.
			i4 := i / 4 * 4
			ra, rb := make([]uint32, 4*kp), make([]uint32, 4*kp)
			PackBF16Panels(ra, a, kc, 1, i4, min(4, k.MR-i4), 0, kc, 4)
			for j := range ldc {
				at := i*ldc + j
				if j >= k.NR {
					if set[at] != before[at] || acc[at] != c0[at] {
						t.Fatalf("%s: wrote C[%d,%d] outside the tile", name, i, j)
					}
					continue
				}
				j4 := j / 4 * 4
				PackBF16Panels(rb, b, kc, 1, j4, min(4, k.NR-j4), 0, kc, 4)
				var rc [16]float32
				ref.Tile(kp, ra, rb, rc[:], 4, false)
				want := rc[(i-i4)*4+j-j4]
				var sum, mag float64
				for p := range kc {
					pr := bf16Round(a[i*kc+p]) * bf16Round(b[j*kc+p])
					sum += pr
					mag += math.Abs(pr)
				}
				bound := 2 * float64(kc+1) * 0x1p-24 * mag
				if d := math.Abs(float64(want) - sum); !(d <= bound) {
					t.Fatalf("%s (%d,%d): reference %g, float64 sum of bf16 products %g", name, i, j, want, sum)
				}
				got := set[at]
				if exact {
					if math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("%s (%d,%d): %g, Go reference %g (bits differ)", name, i, j, got, want)
					}
				} else if d := math.Abs(float64(got) - float64(want)); !(d <= 2*bound) {
					t.Fatalf("%s (%d,%d): %g, Go reference %g", name, i, j, got, want)
				}
				if s := c0[at] + got; math.Float32bits(acc[at]) != math.Float32bits(s) {
					t.Fatalf("%s (%d,%d): accumulated %g, want %g + %g", name, i, j, acc[at], c0[at], got)
				}
			}
		}
	}
}

// The level choice from CPU features, for CPUs this machine is not.
func TestFeatureLevels(t *testing.T) {
	for _, c := range []struct {
		f          Features
		fp32, bf16 Level
	}{
		{Features{}, Go, Go},
		{Features{AVX2: true}, Go, Go},
		{Features{AVX2: true, FMA: true}, AVX2, AVX2},
		{Features{AVX2: true, FMA: true, AVX512BF16: true}, AVX2, AVX2},
		{Features{AVX2: true, FMA: true, AVX512F: true, AVX512DQ: true}, AVX512, AVX2},
		{Features{AVX2: true, FMA: true, AVX512F: true, AVX512DQ: true, AVX512BF16: true}, AVX512, AVX512},
	} {
		if fp, bf := c.f.Levels(); fp != c.fp32 || bf != c.bf16 {
			t.Errorf("%+v: levels %v, %v; want %v, %v", c.f, fp, bf, c.fp32, c.bf16)
		}
	}
}
