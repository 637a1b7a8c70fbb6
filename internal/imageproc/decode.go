package imageproc

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"

	"golang.org/x/image/bmp"
	"golang.org/x/image/webp"
)

// Image is a decoded picture as 8-bit samples in C planes of H*W bytes
// (channel-first; planes keep the resize loops simple and fast). C is 3
// (RGB) or 1 (grey: Pillow's convert("RGB") would replicate it into three
// equal channels, and since resizing treats channels independently the
// replication is deferred to the final crop).
type Image struct {
	W, H, C int
	Pix     []byte // C*H*W
}

func newImage(w, h, c int) *Image {
	return &Image{W: w, H: h, C: c, Pix: make([]byte, c*w*h)}
}

// Plane returns channel c's H*W samples.
func (m *Image) Plane(c int) []byte { return m.Pix[c*m.W*m.H : (c+1)*m.W*m.H] }

// HWC returns the image as interleaved uint8 RGB (grey replicated).
func (m *Image) HWC() []byte {
	n := m.W * m.H
	out := make([]byte, 3*n)
	interleave(out, m, 0, n)
	return out
}

// interleave writes n samples of m's planes starting at sample off into dst
// as RGB triplets.
func interleave(dst []byte, m *Image, off, n int) {
	dst = dst[:3*n]
	if m.C == 1 {
		g := m.Pix[off : off+n]
		for i, v := range g {
			dst[3*i], dst[3*i+1], dst[3*i+2] = v, v, v
		}
		return
	}
	r, g, b := m.Plane(0)[off:off+n], m.Plane(1)[off:off+n], m.Plane(2)[off:off+n]
	for i := range r {
		o := dst[3*i : 3*i+3 : 3*i+3]
		o[0], o[1], o[2] = r[i], g[i], b[i]
	}
}

// ErrUnknownFormat is returned for data that is none of the supported
// formats.
var ErrUnknownFormat = errors.New("unknown image format (want JPEG, PNG, GIF, WebP or BMP)")

// Format sniffs the container format from the first bytes: "jpeg", "png",
// "gif", "webp", "bmp", or "" when unknown.
func Format(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("\xff\xd8")):
		return "jpeg"
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(data, []byte("GIF8")):
		return "gif"
	case len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		return "webp"
	case bytes.HasPrefix(data, []byte("BM")):
		return "bmp"
	}
	return ""
}

// MaxPixels bounds the images Decode accepts (width*height), so a hostile
// or broken header cannot exhaust memory. It is Pillow's decompression-bomb
// error threshold (2 * MAX_IMAGE_PIXELS).
var MaxPixels = 2 * 89478485

// Decode decodes an encoded image and converts it as Pillow's
// Image.open(...).convert("RGB") would (see FromImage).
func Decode(data []byte) (*Image, error) {
	format := Format(data)
	if format == "" {
		if len(data) == 0 {
			return nil, fmt.Errorf("empty file: %w", ErrUnknownFormat)
		}
		return nil, ErrUnknownFormat
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err == nil && int64(cfg.Width)*int64(cfg.Height) > int64(MaxPixels) {
		return nil, fmt.Errorf("%s: %dx%d is more than %d pixels (Pillow refuses it as a decompression bomb too)", format, cfg.Width, cfg.Height, MaxPixels)
	}
	if format == "jpeg" {
		img, err := decodeJPEG(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", format, eofErr(err))
		}
		return img, nil
	}
	r := bytes.NewReader(data)
	var m image.Image
	switch format {
	case "png":
		m, err = png.Decode(r)
	case "gif":
		m, err = gif.Decode(r) // first frame, as Pillow opens it
		if pm, ok := m.(*image.Paletted); ok && err == nil {
			// Undo Go's blanking of the transparent entry (see gifFirstPalette).
			if pal := gifFirstPalette(data); len(pal) > 0 {
				fixed := append(color.Palette(nil), pm.Palette...)
				for i := range min(len(fixed), len(pal)) {
					fixed[i] = pal[i]
				}
				pm.Palette = fixed
			}
		}
	case "webp":
		m, err = webp.Decode(r)
	case "bmp":
		m, err = bmp.Decode(r)
	default:
		return nil, ErrUnknownFormat
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", format, eofErr(err))
	}
	img, err := fromDecoded(m, format)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", format, err)
	}
	return img, nil
}

// eofErr turns the plain EOF of a file cut short mid-header into
// io.ErrUnexpectedEOF, which says what happened.
func eofErr(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// fromDecoded is FromImage for a freshly decoded m, refusing empty images.
func fromDecoded(m image.Image, format string) (*Image, error) {
	b := m.Bounds()
	if b.Empty() {
		return nil, fmt.Errorf("empty image (%dx%d)", b.Dx(), b.Dy())
	}
	return FromImage(m, format), nil
}

// decodeGoJPEG decodes a JPEG with Go's image/jpeg and converts it with
// libjpeg-turbo's chroma upsampling and colour arithmetic (ycc.go).
func decodeGoJPEG(data []byte) (*Image, error) {
	m, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return fromDecoded(m, "jpeg")
}

// DecodeFile reads and decodes the image at path; errors name the path.
func DecodeFile(path string) (*Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *PathError already names the file
	}
	img, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// FromImage converts a decoded image to RGB (or grey) planes as Pillow's
// convert("RGB") does: grey is kept as one channel (expanded later), alpha
// is dropped without compositing, palettes are expanded, CMYK uses Pillow's
// cmyk2rgb, 16-bit samples keep their high byte (as Pillow's ;16B unpackers)
// except 16-bit grey, which Pillow opens as I;16 and saturates at 255.
// format ("jpeg", "webp", ...) selects whose Y'CbCr arithmetic to copy.
func FromImage(m image.Image, format string) *Image {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	switch m := m.(type) {
	case *image.YCbCr:
		if out, ok := fromYCbCr(m, format == "webp"); ok {
			return out
		}
	case *image.NYCbCrA:
		// Lossy WebP with alpha: the colour planes, alpha dropped.
		if out, ok := fromYCbCr(&m.YCbCr, true); ok {
			return out
		}
	case *image.Gray:
		out := newImage(w, h, 1)
		for y := 0; y < h; y++ {
			i := m.PixOffset(b.Min.X, b.Min.Y+y)
			copy(out.Pix[y*w:(y+1)*w], m.Pix[i:i+w])
		}
		return out
	case *image.Gray16:
		out := newImage(w, h, 1)
		for y := 0; y < h; y++ {
			src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:2*w]
			dst := out.Pix[y*w : (y+1)*w]
			for x := range dst {
				if src[2*x] != 0 { // Pillow's I16_RGB: v > 255 -> 255
					dst[x] = 255
				} else {
					dst[x] = src[2*x+1]
				}
			}
		}
		return out
	case *image.RGBA:
		return from4(m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), w, h, 1)
	case *image.NRGBA:
		return from4(m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), w, h, 1)
	case *image.RGBA64:
		return from4(m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), w, h, 2)
	case *image.NRGBA64:
		return from4(m.Pix, m.Stride, m.PixOffset(b.Min.X, b.Min.Y), w, h, 2)
	case *image.Paletted:
		var lut [256][3]byte
		for i, c := range m.Palette {
			if i >= 256 {
				break
			}
			lut[i] = paletteRGB(c)
		}
		out := newImage(w, h, 3)
		r, g, bl := out.Plane(0), out.Plane(1), out.Plane(2)
		for y := 0; y < h; y++ {
			src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			for x, p := range src {
				c := lut[p]
				i := y*w + x
				r[i], g[i], bl[i] = c[0], c[1], c[2]
			}
		}
		return out
	case *image.CMYK:
		out := newImage(w, h, 3)
		for y := 0; y < h; y++ {
			src := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):][:4*w]
			for x := 0; x < w; x++ {
				nk := 255 - int32(src[4*x+3])
				for c := 0; c < 3; c++ {
					out.Pix[c*w*h+y*w+x] = sat8(nk - mulDiv255(int32(src[4*x+c]), nk))
				}
			}
		}
		return out
	}
	// Anything else (and Y'CbCr layouts not handled above): Go's own
	// conversion to non-premultiplied RGB, alpha dropped.
	out := newImage(w, h, 3)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBAModel.Convert(m.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			i := y*w + x
			out.Pix[i], out.Pix[w*h+i], out.Pix[2*w*h+i] = c.R, c.G, c.B
		}
	}
	return out
}

// mulDiv255 is Pillow's MULDIV255: a*b/255 rounded, in integer arithmetic.
func mulDiv255(a, b int32) int32 {
	t := a*b + 128
	return ((t >> 8) + t) >> 8
}

// from4 copies the colour bytes of 4-sample pixels (bps bytes per sample,
// big-endian, so the high byte is first) and drops the fourth sample.
// Premultiplied sources are copied as stored: Pillow drops alpha the same
// way, and opaque pixels are identical either way.
func from4(pix []byte, stride, off, w, h, bps int) *Image {
	out := newImage(w, h, 3)
	step := 4 * bps
	for y := 0; y < h; y++ {
		src := pix[off+y*stride:][:step*w]
		r, g, b := out.Plane(0)[y*w:(y+1)*w], out.Plane(1)[y*w:(y+1)*w], out.Plane(2)[y*w:(y+1)*w]
		for x := range r {
			s := src[step*x:]
			r[x], g[x], b[x] = s[0], s[bps], s[2*bps]
		}
	}
	return out
}

// paletteRGB is the palette entry's stored colour, alpha ignored (Pillow's
// P -> RGB looks up the palette's RGB triplet only).
func paletteRGB(c color.Color) [3]byte {
	switch c := c.(type) {
	case color.NRGBA:
		return [3]byte{c.R, c.G, c.B}
	case color.RGBA:
		return [3]byte{c.R, c.G, c.B}
	}
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	return [3]byte{n.R, n.G, n.B}
}
