package imageproc

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestFilterRowMatchesGo: the SIMD row filter (where this machine has it)
// gives the Go loop's bytes for every width class (32-column blocks,
// 8-column blocks, a scalar tail), tap counts, and coefficients that drive
// sums below 0 and above 255 (saturation) or wrap int32 as Pillow's does.
func TestFilterRowMatchesGo(t *testing.T) {
	t.Logf("AVX2 kernel in use: %v", haveAVX2)
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{1, 7, 8, 9, 31, 32, 33, 40, 63, 224, 301} {
		for _, taps := range []int{1, 2, 7, 9, 19} {
			stride := n + r.IntN(5)
			src := make([]byte, (taps-1)*stride+n)
			for i := range src {
				src[i] = byte(r.IntN(256))
			}
			coeffs := make([]int32, taps)
			for j := range coeffs {
				switch r.IntN(3) {
				case 0: // Pillow-sized taps, negative lobes included
					coeffs[j] = int32(r.IntN(3<<precisionBits)) - 1<<precisionBits
				case 1: // large enough that sums overflow int32
					coeffs[j] = int32(r.Uint32())
				default:
					coeffs[j] = int32(r.IntN(1 << precisionBits))
				}
			}
			got, want := make([]byte, n), make([]byte, n)
			filterRow(got, src, stride, coeffs, n)
			filterRowGo(want, src, stride, coeffs, 0, n)
			if !bytes.Equal(got, want) {
				t.Fatalf("n=%d taps=%d: SIMD and Go rows differ", n, taps)
			}
		}
	}
}

// TestTransposedHorizontalMatches: the transpose-filter-transpose form of
// the horizontal pass equals the direct one (Pillow's order of sums) for
// shrinking, enlarging and odd sizes, on a sub-range of rows and columns,
// with both filters.
func TestTransposedHorizontalMatches(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for i, c := range []struct{ sw, ow, h, lo, hi, y0, y1 int }{
		{500, 298, 375, 37, 261, 0, 375},
		{1000, 224, 40, 0, 224, 3, 37},
		{100, 373, 60, 74, 298, 0, 60},
		{33, 31, 9, 0, 31, 1, 8},
	} {
		src := make([]byte, c.sw*c.h)
		for i := range src {
			src[i] = byte(r.IntN(256))
		}
		k := newKernel(c.sw, c.ow, c.lo, c.hi, Filter(i%2)) // bicubic and bilinear
		n := (c.y1 - c.y0) * (c.hi - c.lo)
		want, got := make([]byte, n), make([]byte, n)
		horizontal(want, src, c.sw, c.y0, c.y1, &k)
		transposedHorizontal(got, src, c.sw, c.y0, c.y1, &k, nil, nil)
		if !bytes.Equal(got, want) {
			t.Fatalf("%+v: transposed horizontal pass differs", c)
		}
	}
}

// TestTranspose: the blocked transpose against the definition, for sizes
// with and without ragged 8x8 edges.
func TestTranspose(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, s := range [][2]int{{1, 1}, {8, 8}, {3, 17}, {16, 8}, {375, 500}, {23, 41}} {
		h, w := s[0], s[1]
		src := make([]byte, h*w)
		for i := range src {
			src[i] = byte(r.IntN(256))
		}
		dst := make([]byte, h*w)
		transpose(dst, src, h, w)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				if dst[x*h+y] != src[y*w+x] {
					t.Fatalf("%dx%d: (%d,%d) not transposed", h, w, y, x)
				}
			}
		}
	}
}
