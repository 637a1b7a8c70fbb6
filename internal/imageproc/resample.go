package imageproc

import (
	"encoding/binary"
	"fmt"
	"math"
)

// This file reproduces Pillow's Image.resize(..., BICUBIC or BILINEAR) for
// 8-bit images (libImaging/Resample.c): a separable filter whose support is
// widened by the scale factor when shrinking (antialiasing), coefficients
// normalised to sum 1
// and then rounded to fixed point with precisionBits fractional bits,
// horizontal pass first, each pass rounding and clipping to uint8.
// Every step follows Pillow's order of operations so the output is bit-exact.

// precisionBits matches Pillow: 8 bits for the result, 2 for overflow.
const precisionBits = 32 - 8 - 2

// Filter is a Pillow resampling filter. The zero value is bicubic, CLIP's.
type Filter int

const (
	Bicubic  Filter = iota // PIL.Image.BICUBIC (3): Pillow's a=-0.5 cubic, support 2
	Bilinear               // PIL.Image.BILINEAR (2): the triangle filter, support 1
)

// PILFilter is the Filter of PIL.Image.Resampling value n (as
// preprocessor_config.json's "resample" gives it).
func PILFilter(n int) (Filter, error) {
	switch n {
	case 2:
		return Bilinear, nil
	case 3:
		return Bicubic, nil
	}
	return 0, fmt.Errorf("resample=%d is not supported (2, bilinear, or 3, bicubic)", n)
}

func (f Filter) String() string {
	switch f {
	case Bicubic:
		return "bicubic"
	case Bilinear:
		return "bilinear"
	}
	return fmt.Sprintf("Filter(%d)", int(f))
}

// support is the filter's radius at scale 1; fn its weight function.
func (f Filter) support() float64 {
	if f == Bilinear {
		return 1
	}
	return 2
}

func (f Filter) fn() func(float64) float64 {
	if f == Bilinear {
		return bilinear
	}
	return bicubic
}

// bilinear is Pillow's bilinear_filter.
func bilinear(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// bicubic is Pillow's bicubic_filter. The float64 conversions round each
// product, so the compiler never fuses them into FMAs that Pillow's C build
// does not use (a fused result can differ in the last bit).
func bicubic(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		t := float64((a+2.0)*x) - (a + 3.0)
		t = float64(t * x)
		t = float64(t * x)
		return t + 1
	}
	if x < 2 {
		t := float64((x-5)*x) + 8
		t = float64(t*x) - 4
		return t * a
	}
	return 0
}

// kernel holds fixed-point filter taps for a contiguous range of output
// positions [lo, lo+len(start)).
type kernel struct {
	lo     int
	start  []int   // first input index for each output
	n      []int   // number of taps for each output
	ksize  int     // stride of coeffs
	coeffs []int32 // n[i] taps at coeffs[i*ksize:]
}

// newKernel computes Pillow's precompute_coeffs + normalize_coeffs_8bpc for
// resizing inSize to outSize with f, restricted to outputs [lo, hi).
func newKernel(inSize, outSize, lo, hi int, f Filter) kernel {
	// Pillow passes the box edges as C floats; in1-in0 is exact here.
	scale := float64(float32(inSize)) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := f.support() * filterscale
	filter := f.fn()
	ksize := int(math.Ceil(support))*2 + 1
	k := kernel{lo: lo, ksize: ksize,
		start:  make([]int, hi-lo),
		n:      make([]int, hi-lo),
		coeffs: make([]int32, (hi-lo)*ksize),
	}
	w := make([]float64, ksize)
	ss := 1.0 / filterscale
	for xx := lo; xx < hi; xx++ {
		center := float64(float64(xx)+0.5) * scale
		xmin := int(center - support + 0.5) // C truncation, as Pillow
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			v := filter(float64(float64(x+xmin)-center+0.5) * ss)
			w[x] = v
			ww += v
		}
		i := xx - lo
		out := k.coeffs[i*ksize : i*ksize+ksize]
		for x := 0; x < xmax; x++ {
			v := w[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				out[x] = int32(-0.5 + float64(v*(1<<precisionBits)))
			} else {
				out[x] = int32(0.5 + float64(v*(1<<precisionBits)))
			}
		}
		k.start[i] = xmin
		k.n[i] = xmax
	}
	return k
}

// clip8 is Pillow's clip8: drop the fraction bits and saturate.
func clip8(v int32) byte {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return byte(v)
}

const half = int32(1) << (precisionBits - 1)

// horizontal resamples rows [y0, y1) of the plane src (width sw) with k
// into dst, which holds (y1-y0) rows of len(k.start) samples. Four rows are
// filtered together so each tap's coefficient is loaded once for all four
// (the taps are short, so loop overhead dominates otherwise).
func horizontal(dst, src []byte, sw, y0, y1 int, k *kernel) {
	ow := len(k.start)
	y := y0
	for ; y+4 <= y1; y += 4 {
		rows := src[y*sw : (y+4)*sw]
		out := dst[(y-y0)*ow : (y-y0+4)*ow]
		for x := 0; x < ow; x++ {
			kk := k.coeffs[x*k.ksize : x*k.ksize+k.n[x]]
			st := k.start[x]
			r0 := rows[st:]
			r0 = r0[:len(kk)]
			r1 := rows[sw+st:]
			r1 = r1[:len(kk)]
			r2 := rows[2*sw+st:]
			r2 = r2[:len(kk)]
			r3 := rows[3*sw+st:]
			r3 = r3[:len(kk)]
			a0, a1, a2, a3 := half, half, half, half
			for i, w := range kk {
				a0 += int32(r0[i]) * w
				a1 += int32(r1[i]) * w
				a2 += int32(r2[i]) * w
				a3 += int32(r3[i]) * w
			}
			out[x] = clip8(a0)
			out[ow+x] = clip8(a1)
			out[2*ow+x] = clip8(a2)
			out[3*ow+x] = clip8(a3)
		}
	}
	for ; y < y1; y++ {
		row := src[y*sw : (y+1)*sw]
		out := dst[(y-y0)*ow : (y-y0+1)*ow]
		for x := range out {
			kk := k.coeffs[x*k.ksize : x*k.ksize+k.n[x]]
			s := row[k.start[x]:]
			s = s[:len(kk)]
			acc := half
			for i, w := range kk {
				acc += int32(s[i]) * w
			}
			out[x] = clip8(acc)
		}
	}
}

// filterRowGo computes outputs [from, n) of one filtered row:
// dst[i] = clip8(half + sum_j src[j*stride+i]*coeffs[j]). Both passes are
// this sum once the horizontal pass has transposed its input (see
// transposedHorizontal); filterRow runs it in SIMD where there is some.
func filterRowGo(dst, src []byte, stride int, coeffs []int32, from, n int) {
	for i := from; i < n; i++ {
		acc := half
		for j, w := range coeffs {
			acc += int32(src[j*stride+i]) * w
		}
		dst[i] = clip8(acc)
	}
}

// vertical resamples src (rows starting at source row srcY0, rowLen bytes
// each) with k into dst, one output row per kernel position. Summing the
// taps row by row adds the same int32 products as Pillow's per-pixel loop,
// so the result is identical.
func vertical(dst, src []byte, rowLen, srcY0 int, k *kernel) {
	for y := range k.start {
		kk := k.coeffs[y*k.ksize : y*k.ksize+k.n[y]]
		filterRow(dst[y*rowLen:(y+1)*rowLen], src[(k.start[y]-srcY0)*rowLen:], rowLen, kk, rowLen)
	}
}

// transposedHorizontal is horizontal for SIMD: it transposes rows [y0, y1)
// of src so that each output column is a vertical filter over whole rows
// (filterRow, many rows at once), then transposes the result back into dst.
// t1 and t2 are scratch, grown as needed and returned.
func transposedHorizontal(dst, src []byte, sw, y0, y1 int, k *kernel, t1, t2 []byte) ([]byte, []byte) {
	nr, ow := y1-y0, len(k.start)
	t1 = grow(t1, sw*nr)
	t2 = grow(t2, ow*nr)
	transpose(t1, src[y0*sw:y1*sw], nr, sw)
	for x := 0; x < ow; x++ {
		kk := k.coeffs[x*k.ksize : x*k.ksize+k.n[x]]
		filterRow(t2[x*nr:(x+1)*nr], t1[k.start[x]*nr:], nr, kk, nr)
	}
	transpose(dst[:nr*ow], t2, ow, nr)
	return t1, t2
}

// transpose writes the h x w matrix src (row-major) as the w x h matrix
// dst: 8x8 blocks as eight 64-bit words swapped in place (transpose8), the
// ragged edges byte by byte.
func transpose(dst, src []byte, h, w int) {
	_ = src[h*w-1]
	_ = dst[h*w-1]
	h8, w8 := h&^7, w&^7
	var a [8]uint64
	for y := 0; y < h8; y += 8 {
		for x := 0; x < w8; x += 8 {
			for i := range a {
				a[i] = binary.LittleEndian.Uint64(src[(y+i)*w+x:])
			}
			transpose8(&a)
			for i, v := range a {
				binary.LittleEndian.PutUint64(dst[(x+i)*h+y:], v)
			}
		}
	}
	for y := 0; y < h; y++ {
		from := w8
		if y >= h8 {
			from = 0
		}
		row := src[y*w : (y+1)*w]
		for x := from; x < w; x++ {
			dst[x*h+y] = row[x]
		}
	}
}

// transpose8 transposes the 8x8 byte matrix whose rows are a's words
// (byte k of a[i] is column k): swap 1x1, then 2x2, then 4x4 sub-blocks.
func transpose8(a *[8]uint64) {
	for _, s := range [...]struct {
		d    int
		sh   uint
		mask uint64
	}{{1, 8, 0x00FF00FF00FF00FF}, {2, 16, 0x0000FFFF0000FFFF}, {4, 32, 0x00000000FFFFFFFF}} {
		for i := 0; i < 8; i++ {
			if i&s.d != 0 {
				continue
			}
			t := ((a[i] >> s.sh) ^ a[i+s.d]) & s.mask
			a[i+s.d] ^= t
			a[i] ^= t << s.sh
		}
	}
}
