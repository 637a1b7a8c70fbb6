package imageproc

import "image"

// Go's decoders hand back subsampled Y'CbCr planes; Pillow gets RGB from
// libjpeg-turbo (JPEG) or libwebp (WebP), which upsample chroma with a
// triangle filter ("fancy upsampling") and convert with their own
// fixed-point tables. Go's own YCbCr.At uses nearest chroma and a different
// rounding, which costs several levels at colour edges, so both libraries'
// arithmetic is reproduced here.

// libjpeg jdcolor.c tables (SCALEBITS 16, FIX(x) = x*65536+0.5).
var jpegCrR, jpegCbB, jpegCrG, jpegCbG [256]int32

func init() {
	const (
		scaleBits = 16
		oneHalf   = 1 << (scaleBits - 1)
	)
	fix := func(x float64) int32 { return int32(x*(1<<scaleBits) + 0.5) }
	for i := range 256 {
		x := int32(i - 128)
		jpegCrR[i] = (fix(1.40200)*x + oneHalf) >> scaleBits
		jpegCbB[i] = (fix(1.77200)*x + oneHalf) >> scaleBits
		jpegCrG[i] = -fix(0.71414) * x
		jpegCbG[i] = -fix(0.34414)*x + oneHalf
	}
}

func sat8(v int32) byte {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return byte(v)
}

// jpegRow converts one row of full-width Y, Cb, Cr samples to R, G, B rows
// as libjpeg's ycc_rgb_convert does.
func jpegRow(ro, gr, bo, y, cb, cr []byte) {
	n := len(y)
	ro, gr, bo, cb, cr = ro[:n], gr[:n], bo[:n], cb[:n], cr[:n]
	for i, yv := range y {
		Y := int32(yv)
		b, r := cb[i], cr[i]
		ro[i] = sat8(Y + jpegCrR[r])
		gr[i] = sat8(Y + (jpegCbG[b]+jpegCrG[r])>>16)
		bo[i] = sat8(Y + jpegCbB[b])
	}
}

// libwebp yuv.h: BT.601 limited range, 14-bit intermediate ("MultHi").
func webpClip(v int32) byte {
	const mask = (256 << 6) - 1
	if v&^mask == 0 {
		return byte(v >> 6)
	}
	if v < 0 {
		return 0
	}
	return 255
}

func mulHi(v, c int32) int32 { return (v * c) >> 8 }

func webpRow(ro, gr, bo, y, u, v []byte) {
	n := len(y)
	ro, gr, bo, u, v = ro[:n], gr[:n], bo[:n], u[:n], v[:n]
	for i, yv := range y {
		Y := mulHi(int32(yv), 19077)
		U, V := int32(u[i]), int32(v[i])
		ro[i] = webpClip(Y + mulHi(V, 26149) - 14234)
		gr[i] = webpClip(Y - mulHi(U, 6419) - mulHi(V, 13320) + 8708)
		bo[i] = webpClip(Y + mulHi(U, 33050) - 17685)
	}
}

// chromaRows returns the chroma rows nearest to and next nearest to output
// row y for vertical factor vf (1 or 2). The edge rows repeat, as libjpeg's
// context rows and libwebp's first/last line pairs do.
func chromaRows(y, vf, ch int) (near, far int) {
	if vf == 1 {
		return y, y
	}
	near = y >> 1
	if y&1 == 1 {
		far = near + 1
	} else {
		far = near - 1
	}
	if far < 0 {
		far = 0
	}
	if far >= ch {
		far = ch - 1
	}
	return near, far
}

// jpegH2V2 is libjpeg-turbo's h2v2_fancy_upsample for one output row.
func jpegH2V2(dst, near, far []byte, cw, w int, colsum []int32) {
	colsum = colsum[:cw]
	near, far = near[:cw], far[:cw]
	for c := range colsum {
		colsum[c] = 3*int32(near[c]) + int32(far[c])
	}
	for c := 0; c < cw; c++ {
		x := 2 * c
		if x >= w {
			break
		}
		if c == 0 {
			dst[x] = byte((colsum[0]*4 + 8) >> 4)
		} else {
			dst[x] = byte((3*colsum[c] + colsum[c-1] + 8) >> 4)
		}
		if x+1 >= w {
			break
		}
		if c == cw-1 {
			dst[x+1] = byte((colsum[c]*4 + 7) >> 4)
		} else {
			dst[x+1] = byte((3*colsum[c] + colsum[c+1] + 7) >> 4)
		}
	}
}

// jpegH2V1 is libjpeg-turbo's h2v1_fancy_upsample for one row.
func jpegH2V1(dst, s []byte, cw, w int) {
	s = s[:cw]
	for c := 0; c < cw; c++ {
		x := 2 * c
		if x >= w {
			break
		}
		v := 3 * int32(s[c])
		if c == 0 {
			dst[x] = s[0]
		} else {
			dst[x] = byte((v + int32(s[c-1]) + 1) >> 2)
		}
		if x+1 >= w {
			break
		}
		if c == cw-1 {
			dst[x+1] = s[c]
		} else {
			dst[x+1] = byte((v + int32(s[c+1]) + 2) >> 2)
		}
	}
}

// webpH2V2 is one output line of libwebp's fancy upsampler (UPSAMPLE_FUNC)
// for one chroma plane: near is the chroma row closest to the line, far
// the other one of the pair.
func webpH2V2(dst, near, far []byte, w int) {
	dst = dst[:w]
	dst[0] = byte((3*int32(near[0]) + int32(far[0]) + 2) >> 2)
	last := (w - 1) >> 1
	for j := 1; j <= last; j++ {
		tl, t := int32(near[j-1]), int32(near[j])
		l, uv := int32(far[j-1]), int32(far[j])
		avg := tl + t + l + uv + 8
		d12 := (avg + 2*(t+l)) >> 3
		d03 := (avg + 2*(tl+uv)) >> 3
		dst[2*j-1] = byte((d12 + tl) >> 1)
		dst[2*j] = byte((d03 + t) >> 1)
	}
	if w&1 == 0 {
		dst[w-1] = byte((3*int32(near[last]) + int32(far[last]) + 2) >> 2)
	}
}

// fromYCbCr converts m to packed RGB the way libjpeg-turbo (webp=false) or
// libwebp (webp=true) would have. ok is false for layouts it does not handle
// (the caller then falls back to Go's conversion).
func fromYCbCr(m *image.YCbCr, webp bool) (*Image, bool) {
	r := m.Rect
	if r.Min != (image.Point{}) {
		return nil, false
	}
	w, h := r.Dx(), r.Dy()
	var hf, vf int
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio444:
		hf, vf = 1, 1
	case image.YCbCrSubsampleRatio422:
		hf, vf = 2, 1
	case image.YCbCrSubsampleRatio420:
		hf, vf = 2, 2
	case image.YCbCrSubsampleRatio440:
		hf, vf = 1, 2
	case image.YCbCrSubsampleRatio411:
		hf, vf = 4, 1
	case image.YCbCrSubsampleRatio410:
		hf, vf = 4, 2
	default:
		return nil, false
	}
	if webp && (hf != 2 || vf != 2) {
		return nil, false // VP8 is always 4:2:0
	}
	cw := (w + hf - 1) / hf
	ch := (h + vf - 1) / vf
	out := newImage(w, h, 3)
	cb := make([]byte, w)
	cr := make([]byte, w)
	colsum := make([]int32, cw)
	crow := func(p []byte, i int) []byte { return p[i*m.CStride : i*m.CStride+cw] }
	for y := 0; y < h; y++ {
		yrow := m.Y[y*m.YStride : y*m.YStride+w]
		near, far := chromaRows(y, vf, ch)
		switch {
		case webp:
			webpH2V2(cb, crow(m.Cb, near), crow(m.Cb, far), w)
			webpH2V2(cr, crow(m.Cr, near), crow(m.Cr, far), w)
		case hf == 1 && vf == 1:
			copy(cb, crow(m.Cb, y))
			copy(cr, crow(m.Cr, y))
		case hf == 2 && vf == 2 && cw > 2:
			jpegH2V2(cb, crow(m.Cb, near), crow(m.Cb, far), cw, w, colsum)
			jpegH2V2(cr, crow(m.Cr, near), crow(m.Cr, far), cw, w, colsum)
		case hf == 2 && vf == 1 && cw > 2:
			jpegH2V1(cb, crow(m.Cb, y), cw, w)
			jpegH2V1(cr, crow(m.Cr, y), cw, w)
		case hf == 1 && vf == 2:
			// h1v2_fancy_upsample: rounding bias 1 toward the row above,
			// 2 toward the row below.
			bias := int32(1 + y&1)
			nb, fb := crow(m.Cb, near), crow(m.Cb, far)
			nr, fr := crow(m.Cr, near), crow(m.Cr, far)
			for x := 0; x < w; x++ {
				cb[x] = byte((3*int32(nb[x]) + int32(fb[x]) + bias) >> 2)
				cr[x] = byte((3*int32(nr[x]) + int32(fr[x]) + bias) >> 2)
			}
		default:
			// libjpeg's box (int_upsample) cases: replicate.
			sb, sr := crow(m.Cb, y/vf), crow(m.Cr, y/vf)
			for x := 0; x < w; x++ {
				cb[x] = sb[x/hf]
				cr[x] = sr[x/hf]
			}
		}
		ro, gro, bo := out.Plane(0)[y*w:(y+1)*w], out.Plane(1)[y*w:(y+1)*w], out.Plane(2)[y*w:(y+1)*w]
		if webp {
			webpRow(ro, gro, bo, yrow, cb, cr)
		} else {
			jpegRow(ro, gro, bo, yrow, cb, cr)
		}
	}
	return out, true
}
