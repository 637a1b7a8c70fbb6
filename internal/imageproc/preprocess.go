// Package imageproc turns image files into the uint8 RGB arrays CLIP
// consumes, reproducing Hugging Face's CLIPImageProcessor on Pillow:
// convert("RGB"), bicubic resize of the shortest side (long side floored,
// antialiased when shrinking), center crop, and the mean/std normalisation
// the model stages apply; and SiglipImageProcessor's: resize to exactly
// height x width with the configured filter (bilinear or bicubic), no
// crop, mean/std 0.5.
//
// Resizing is bit-exact with Pillow's ImagingResample; PNG/GIF/BMP/lossless
// WebP therefore match Pillow exactly. JPEG and lossy WebP differ slightly
// because Go's decoders use their own IDCT (chroma upsampling and colour
// conversion copy libjpeg-turbo and libwebp); built with -tags turbojpeg,
// JPEGs decode through libjpeg-turbo as Pillow's do and match exactly
// (docs/decode.md). Not reproduced: EXIF
// orientation (Pillow's Image.open ignores it too), and a GIF whose first
// frame is smaller than its logical screen (Go returns the frame alone).
package imageproc

import (
	"fmt"
	"os"
)

// Geometry is how an image is brought to the model's input size: resize so
// the shorter side is Shortest (the longer side floored), or, when Shortest
// is 0, to exactly ResizeW x ResizeH (SigLIP: aspect not kept), with Filter;
// then center crop CropW x CropH (a no-op where the crop is the resize).
type Geometry struct {
	Shortest         int
	ResizeW, ResizeH int
	CropW, CropH     int
	Filter           Filter
}

// Square is CLIP's usual geometry: shortest side to n, crop n x n.
func Square(n int) Geometry { return Geometry{Shortest: n, CropW: n, CropH: n} }

// Validate reports a geometry that cannot be applied.
func (g Geometry) Validate() error {
	if g.CropW <= 0 || g.CropH <= 0 {
		return fmt.Errorf("crop size %dx%d must be positive", g.CropW, g.CropH)
	}
	if g.Shortest <= 0 && (g.ResizeW <= 0 || g.ResizeH <= 0) {
		return fmt.Errorf("resize needs a positive shortest edge or width and height")
	}
	return nil
}

// ResizedSize is the size an image of w x h is resized to: Hugging Face's
// get_resize_output_image_size (shortest side to g.Shortest, long side
// int(size*long/short), i.e. floored).
func (g Geometry) ResizedSize(w, h int) (int, int) {
	if g.Shortest <= 0 {
		return g.ResizeW, g.ResizeH
	}
	s := g.Shortest
	if w <= h {
		return s, h * s / w
	}
	return w * s / h, s
}

// floorDiv2 is Python's x // 2 (rounds toward minus infinity).
func floorDiv2(x int) int { return x >> 1 }

// Processor applies a Geometry. It keeps scratch buffers and filter
// coefficients between images (datasets repeat sizes), so it is not safe for
// concurrent use: give each worker its own.
type Processor struct {
	g       Geometry
	kernels map[[4]int]*kernel
	tmp     []byte
	res     []byte
	t1, t2  []byte // transposes of the SIMD horizontal pass
}

// NewProcessor returns a Processor for g.
func NewProcessor(g Geometry) (*Processor, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return &Processor{g: g, kernels: map[[4]int]*kernel{}}, nil
}

// Geometry returns the processor's geometry.
func (p *Processor) Geometry() Geometry { return p.g }

// OutLen is the length of one output: CropH*CropW*3.
func (p *Processor) OutLen() int { return p.g.CropH * p.g.CropW * 3 }

func (p *Processor) kernel(in, out, lo, hi int) *kernel {
	key := [4]int{in, out, lo, hi}
	if k, ok := p.kernels[key]; ok {
		return k
	}
	if len(p.kernels) > 64 {
		clear(p.kernels) // bound memory on datasets of many sizes
	}
	k := newKernel(in, out, lo, hi, p.g.Filter)
	p.kernels[key] = &k
	return &k
}

func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}

// Apply resizes and center-crops img into dst (length OutLen, uint8 HWC
// RGB), returning dst. The result equals Pillow's resize of the whole image
// followed by the crop, but only the pixels inside the crop are computed.
// Where the crop is larger than the resized image, the border is 0, as in
// Hugging Face's center_crop padding.
func (p *Processor) Apply(dst []byte, img *Image) []byte {
	g := p.g
	dst = grow(dst, p.OutLen())
	nw, nh := g.ResizedSize(img.W, img.H)
	top := floorDiv2(nh - g.CropH)
	left := floorDiv2(nw - g.CropW)
	// The part of the resized image inside the crop.
	ry0, ry1 := max(0, top), min(nh, top+g.CropH)
	rx0, rx1 := max(0, left), min(nw, left+g.CropW)
	if ry0 >= ry1 || rx0 >= rx1 {
		clear(dst)
		return dst
	}
	if ry1-ry0 != g.CropH || rx1-rx0 != g.CropW {
		clear(dst) // padding
	}
	res := p.resize(img, nw, nh, rx0, rx1, ry0, ry1)
	tw := rx1 - rx0
	for y := ry0; y < ry1; y++ {
		o := dst[((y-top)*g.CropW+(rx0-left))*3:]
		interleave(o, res, (y-ry0)*tw, tw)
	}
	return dst
}

// resize computes columns [rx0, rx1) and rows [ry0, ry1) of Pillow's
// resize (with the geometry's filter) of img to nw x nh. The result may share the Processor's
// scratch.
func (p *Processor) resize(img *Image, nw, nh, rx0, rx1, ry0, ry1 int) *Image {
	// Pillow skips a pass whose size does not change (and copies when
	// neither does).
	needH, needV := nw != img.W, nh != img.H
	tw, th := rx1-rx0, ry1-ry0
	// Source rows the vertical pass reads.
	sy0, sy1 := ry0, ry1
	var vk *kernel
	if needV {
		vk = p.kernel(img.H, nh, ry0, ry1)
		last := len(vk.start) - 1
		sy0, sy1 = vk.start[0], vk.start[last]+vk.n[last]
	}
	var hk *kernel
	if needH {
		hk = p.kernel(img.W, nw, rx0, rx1)
	}
	plane := (sy1 - sy0) * tw
	p.tmp = grow(p.tmp, img.C*plane)
	out := &Image{W: tw, H: th, C: img.C, Pix: p.tmp}
	if needV {
		p.res = grow(p.res, img.C*th*tw)
		out.Pix = p.res
	}
	for c := 0; c < img.C; c++ {
		src := img.Plane(c)
		tmp := p.tmp[c*plane : (c+1)*plane]
		switch {
		case needH && haveAVX2:
			p.t1, p.t2 = transposedHorizontal(tmp, src, img.W, sy0, sy1, hk, p.t1, p.t2)
		case needH:
			horizontal(tmp, src, img.W, sy0, sy1, hk)
		default:
			for y := sy0; y < sy1; y++ {
				copy(tmp[(y-sy0)*tw:(y-sy0+1)*tw], src[y*img.W+rx0:])
			}
		}
		if needV {
			vertical(p.res[c*th*tw:(c+1)*th*tw], tmp, tw, sy0, vk)
		}
	}
	return out
}

// File decodes the image at path and applies the geometry into dst.
// Errors name the path.
func (p *Processor) File(dst []byte, path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return p.Bytes(dst, data, path)
}

// Bytes decodes an encoded image and applies the geometry into dst; name
// labels errors.
func (p *Processor) Bytes(dst, data []byte, name string) ([]byte, error) {
	img, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p.Apply(dst, img), nil
}

// Resize is Pillow's Image.resize((w, h), BICUBIC) of the whole image.
func Resize(img *Image, w, h int) *Image { return ResizeFilter(img, w, h, Bicubic) }

// ResizeFilter is Pillow's Image.resize((w, h), f) of the whole image.
func ResizeFilter(img *Image, w, h int, f Filter) *Image {
	p := &Processor{g: Geometry{Filter: f}, kernels: map[[4]int]*kernel{}}
	out := p.resize(img, w, h, 0, w, 0, h)
	out.Pix = append([]byte(nil), out.Pix...)
	return out
}

// CenterCrop is Hugging Face's center_crop (top=(h-ch)//2, left=(w-cw)//2,
// zero padding where the crop exceeds the image) returning uint8 HWC RGB.
func CenterCrop(img *Image, cw, ch int) []byte {
	p := &Processor{g: Geometry{ResizeW: img.W, ResizeH: img.H, CropW: cw, CropH: ch}, kernels: map[[4]int]*kernel{}}
	return p.Apply(nil, img)
}
