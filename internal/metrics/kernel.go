package metrics

import "os"

// Scores are dot products computed over packed panels: captions in panels of
// mr rows, images in panels of nr columns, both k-major, so the inner loop of
// every kernel streams both operands contiguously.
//
// Every score, whichever kernel computes it, is one lane accumulating
// fma(a[k], b[k], acc) for k = 0..d-1 from zero (or, in the portable Go path,
// acc += float32(a[k]*b[k])). A given pair therefore always gets the
// bit-identical score, which the rank computation depends on: it compares a
// relevant item's score, computed alone, with the same score inside a block.

const (
	mr = 12 // rows (captions) per A panel
	nr = 32 // columns (images) per B panel
)

// Set by kernel_amd64.go from the CPU's features.
var hasAVX2, hasAVX512 bool

// kernelKind selects the kernels once per Rank call: "avx512", "avx2" or "go".
// CLIPLINE_METRICS_KERNEL=avx2 or go picks a slower one (for comparisons).
func kernelKind() string {
	switch os.Getenv("CLIPLINE_METRICS_KERNEL") {
	case "go":
		return "go"
	case "avx2":
		if hasAVX2 {
			return "avx2"
		}
	}
	switch {
	case hasAVX512:
		return "avx512"
	case hasAVX2:
		return "avx2"
	}
	return "go"
}

// packPanels packs n rows of x (n×d, row-major) into ceil(n/w) panels of w
// rows, each k-major (panel p holds x[p*w+i][k] at p*w*d + k*w + i); rows past
// n are zero. dst must hold ceil(n/w)*w*d floats.
func packPanels(dst, x []float32, n, d, w int) {
	np := (n + w - 1) / w
	for p := range np {
		panel := dst[p*w*d : (p+1)*w*d]
		for i := range w {
			r := p*w + i
			if r >= n {
				for k := range d {
					panel[k*w+i] = 0
				}
				continue
			}
			row := x[r*d : (r+1)*d]
			for k, v := range row {
				panel[k*w+i] = v
			}
		}
	}
}

// tile computes the mr×nr block c (row stride ldc) = A panel a × B panel b.
func tile(kind string, a, b []float32, d int, c []float32, ldc int) {
	_ = a[mr*d-1]
	_ = b[nr*d-1]
	_ = c[(mr-1)*ldc+nr-1]
	switch kind {
	case "avx512":
		kern12x32AVX512(&a[0], &b[0], d, &c[0], ldc)
	case "avx2":
		kern6x16AVX2(&a[0], &b[0], d, &c[0], ldc)
		kern6x16AVX2(&a[6], &b[0], d, &c[6*ldc], ldc)
		kern6x16AVX2(&a[0], &b[16], d, &c[16], ldc)
		kern6x16AVX2(&a[6], &b[16], d, &c[6*ldc+16], ldc)
	default:
		tileGo(a, b, d, c, ldc)
	}
}

func tileGo(a, b []float32, d int, c []float32, ldc int) {
	var acc [mr][nr]float32
	for k := range d {
		bk := b[k*nr : k*nr+nr]
		for i := range mr {
			ai := a[k*mr+i]
			row := &acc[i]
			for j, bv := range bk {
				row[j] += float32(ai * bv) // conversion forbids fusing: same as rowGo
			}
		}
	}
	for i := range mr {
		copy(c[i*ldc:i*ldc+nr], acc[i][:])
	}
}

// rowScores computes the nr scores of one contiguous row a[0:d] against the
// B panel b, bit-identical to what tile gives for the same pairs.
func rowScores(kind string, a, b []float32, d int, out *[nr]float32) {
	_ = a[d-1]
	_ = b[nr*d-1]
	if kind == "go" {
		*out = [nr]float32{}
		for k, ak := range a[:d] {
			bk := b[k*nr : k*nr+nr]
			for j, bv := range bk {
				out[j] += float32(ak * bv)
			}
		}
		return
	}
	kern1x32AVX2(&a[0], &b[0], d, &out[0])
}
