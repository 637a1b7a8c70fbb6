package imageproc

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/bmp"

	"github.com/clipline/clipline/internal/safetensors"
	"github.com/clipline/clipline/internal/sharedtest"
)

// testPicture is a w x h RGBA picture with gradients and hard edges.
func testPicture(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x / 7 % 2) * 200), 255}
			m.SetNRGBA(x, y, c)
		}
	}
	return m
}

func encode(t *testing.T, enc func(io.Writer, image.Image) error, m image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := enc(&buf, m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func pixelsRGB(m image.Image) []byte {
	b := m.Bounds()
	out := make([]byte, 0, 3*b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(m.At(x, y)).(color.NRGBA)
			out = append(out, c.R, c.G, c.B)
		}
	}
	return out
}

func meanAbsDiff(a, b []byte) (float64, int) {
	s, mx := 0, 0
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		s += d
		mx = max(mx, d)
	}
	return float64(s) / float64(len(a)), mx
}

// TestFormats decodes each supported format (written by Go's encoders, or
// x/image's WebP test files) and compares with the pixels it encodes.
func TestFormats(t *testing.T) {
	src := testPicture(40, 30)
	smooth := image.NewNRGBA(src.Bounds())
	for y := 0; y < 30; y++ {
		for x := 0; x < 40; x++ {
			smooth.SetNRGBA(x, y, color.NRGBA{uint8(60 + 3*x), uint8(40 + 4*y), uint8(150 - 2*x + y), 255})
		}
	}
	pal := image.NewPaletted(src.Bounds(), nil)
	pal.Palette = color.Palette{color.RGBA{10, 20, 30, 255}, color.RGBA{200, 100, 50, 255}, color.RGBA{0, 255, 0, 255}}
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i % 3)
	}
	cases := []struct {
		name, format string
		data         []byte
		want         []byte
		maxMean      float64 // 0: exact
	}{
		{"png", "png", encode(t, png.Encode, src), pixelsRGB(src), 0},
		{"bmp", "bmp", encode(t, bmp.Encode, src), pixelsRGB(src), 0},
		{"gif", "gif", encode(t, func(w io.Writer, m image.Image) error { return gif.Encode(w, m, nil) }, pal), pixelsRGB(pal), 0},
		// Smooth content: 4:2:0 chroma cannot keep hard colour edges.
		{"jpeg", "jpeg", encode(t, func(w io.Writer, m image.Image) error { return jpeg.Encode(w, m, &jpeg.Options{Quality: 95}) }, smooth), pixelsRGB(smooth), 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Format(tc.data); got != tc.format {
				t.Fatalf("Format = %q, want %q", got, tc.format)
			}
			img, err := Decode(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if img.W != 40 || img.H != 30 || img.C != 3 {
				t.Fatalf("decoded %dx%dx%d", img.W, img.H, img.C)
			}
			mean, mx := meanAbsDiff(img.HWC(), tc.want)
			t.Logf("mean abs diff %.3f, max %d", mean, mx)
			if tc.maxMean == 0 && mx != 0 {
				t.Fatalf("not exact: max diff %d", mx)
			}
			if !(mean <= tc.maxMean) {
				t.Fatalf("mean abs diff %.3f > %.1f", mean, tc.maxMean)
			}
		})
	}

	// WebP files from golang.org/x/image's testdata (BSD licence, see
	// testdata/README.md): lossless must be exact against its PNG; lossy is
	// checked against the original picture, which only the limited-range
	// BT.601 conversion libwebp uses gets close to (Go's full-range JPEG
	// formula is off by about 11 levels on average here).
	t.Run("webp-lossless", func(t *testing.T) {
		got := mustDecodeFile(t, "testdata/gopher-doc.1bpp.lossless.webp")
		want := mustDecodeFile(t, "testdata/gopher-doc.1bpp.png")
		if _, mx := meanAbsDiff(got.HWC(), want.HWC()); mx != 0 || got.W != want.W || got.H != want.H {
			t.Fatalf("lossless WebP differs from its PNG (max diff %d)", mx)
		}
	})
	t.Run("webp-lossy", func(t *testing.T) {
		got := mustDecodeFile(t, "testdata/blue-purple-pink.lossy.webp")
		want := mustDecodeFile(t, "testdata/blue-purple-pink.png")
		mean, mx := meanAbsDiff(got.HWC(), want.HWC())
		t.Logf("lossy WebP vs original: mean abs diff %.3f, max %d", mean, mx)
		if !(mean <= 6) {
			t.Fatalf("mean abs diff %.3f > 6: wrong YUV range or upsampling?", mean)
		}
	})
}

func mustDecodeFile(t *testing.T, path string) *Image {
	t.Helper()
	img, err := DecodeFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestConversions checks convert("RGB") semantics per source type.
func TestConversions(t *testing.T) {
	t.Run("grey", func(t *testing.T) {
		g := image.NewGray(image.Rect(0, 0, 3, 1))
		copy(g.Pix, []byte{0, 128, 255})
		img := FromImage(g, "png")
		if img.C != 1 {
			t.Fatalf("grey kept as %d channels", img.C)
		}
		if got := img.HWC(); !bytes.Equal(got, []byte{0, 0, 0, 128, 128, 128, 255, 255, 255}) {
			t.Fatalf("grey expanded to %v", got)
		}
	})
	t.Run("grey16 saturates like Pillow's I;16", func(t *testing.T) {
		g := image.NewGray16(image.Rect(0, 0, 3, 1))
		g.SetGray16(0, 0, color.Gray16{Y: 200})
		g.SetGray16(1, 0, color.Gray16{Y: 255})
		g.SetGray16(2, 0, color.Gray16{Y: 256})
		if got := FromImage(g, "png").HWC(); !bytes.Equal(got, []byte{200, 200, 200, 255, 255, 255, 255, 255, 255}) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("alpha dropped without compositing", func(t *testing.T) {
		m := image.NewNRGBA(image.Rect(0, 0, 2, 1))
		m.SetNRGBA(0, 0, color.NRGBA{10, 20, 30, 0})
		m.SetNRGBA(1, 0, color.NRGBA{200, 150, 100, 128})
		// Round trip through PNG, as a real RGBA file.
		img, err := Decode(encode(t, png.Encode, m))
		if err != nil {
			t.Fatal(err)
		}
		if got := img.HWC(); !bytes.Equal(got, []byte{10, 20, 30, 200, 150, 100}) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("palette with transparency", func(t *testing.T) {
		p := image.NewPaletted(image.Rect(0, 0, 2, 1), color.Palette{
			color.NRGBA{1, 2, 3, 0}, color.NRGBA{250, 128, 7, 255}})
		p.Pix = []byte{0, 1}
		img, err := Decode(encode(t, png.Encode, p))
		if err != nil {
			t.Fatal(err)
		}
		if got := img.HWC(); !bytes.Equal(got, []byte{1, 2, 3, 250, 128, 7}) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("gif transparent index keeps its stored colour", func(t *testing.T) {
		p := image.NewPaletted(image.Rect(0, 0, 3, 1), color.Palette{
			color.RGBA{10, 20, 30, 255}, color.RGBA{0, 0, 0, 0}, color.RGBA{200, 0, 0, 255}})
		p.Pix = []byte{0, 1, 2}
		data := encode(t, func(w io.Writer, m image.Image) error { return gif.Encode(w, m, nil) }, p)
		if data[10]&0x80 == 0 {
			t.Fatal("Go's encoder wrote no global colour table")
		}
		// Go writes the transparent entry as black; store a colour there,
		// as other encoders do. Pillow's convert("RGB") shows it.
		copy(data[13+3:], []byte{77, 88, 99})
		img, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		if got := img.HWC(); !bytes.Equal(got, []byte{10, 20, 30, 77, 88, 99, 200, 0, 0}) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("rgb16 keeps the high byte", func(t *testing.T) {
		m := image.NewRGBA64(image.Rect(0, 0, 1, 1))
		m.SetRGBA64(0, 0, color.RGBA64{0x12ff, 0x3400, 0xfe80, 0xffff})
		img, err := Decode(encode(t, png.Encode, m))
		if err != nil {
			t.Fatal(err)
		}
		if got := img.HWC(); !bytes.Equal(got, []byte{0x12, 0x34, 0xfe}) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("cmyk as Pillow's cmyk2rgb", func(t *testing.T) {
		m := image.NewCMYK(image.Rect(0, 0, 4, 1))
		m.SetCMYK(0, 0, color.CMYK{0, 0, 0, 0})
		m.SetCMYK(1, 0, color.CMYK{255, 0, 0, 0})
		m.SetCMYK(2, 0, color.CMYK{0, 0, 0, 255})
		m.SetCMYK(3, 0, color.CMYK{128, 64, 0, 128})
		// nk=127: 127 - MULDIV255(128,127)=127-64=63; 127 - MULDIV255(64,127)=127-32=95
		want := []byte{255, 255, 255, 0, 255, 255, 0, 0, 0, 63, 95, 127}
		if got := FromImage(m, "jpeg").HWC(); !bytes.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}

// TestCorrupt: a truncated JPEG is an error naming the file (Go reports
// either unexpected EOF or short Huffman data, depending on where the cut
// falls).
func TestCorrupt(t *testing.T) {
	data := encode(t, func(w io.Writer, m image.Image) error { return jpeg.Encode(w, m, nil) }, testPicture(64, 48))
	dir := t.TempDir()
	for _, n := range []int{len(data) / 2, 20, 3} {
		path := filepath.Join(dir, "cut.jpg")
		if err := os.WriteFile(path, data[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := DecodeFile(path)
		if err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		}
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("truncated to %d bytes: error %q should name the file", n, err)
		}
		t.Logf("truncated to %d bytes: %v", n, err)
	}
	defer func(n int) { MaxPixels = n }(MaxPixels)
	MaxPixels = 64*48 - 1
	if _, err := Decode(data); err == nil || !strings.Contains(err.Error(), "64x48") {
		t.Fatalf("image over MaxPixels: %v", err)
	}
	MaxPixels = 64 * 48
	if _, err := Decode(data); err != nil {
		t.Fatalf("image at MaxPixels: %v", err)
	}

	p, _ := NewProcessor(Square(8))
	if _, err := p.Bytes(nil, []byte("not an image"), "x.txt"); !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), "x.txt") {
		t.Fatalf("unknown format: %v", err)
	}
	if _, err := p.File(nil, filepath.Join(dir, "missing.png")); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.png") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestResizedSize(t *testing.T) {
	g := Square(224)
	for _, c := range [][4]int{{500, 375, 298, 224}, {375, 500, 224, 298}, {224, 224, 224, 224},
		{100, 60, 373, 224}, {301, 227, 297, 224}, {1000, 200, 1120, 224}, {256, 300, 224, 262}} {
		if w, h := g.ResizedSize(c[0], c[1]); w != c[2] || h != c[3] {
			t.Errorf("%dx%d -> %dx%d, want %dx%d", c[0], c[1], w, h, c[2], c[3])
		}
	}
}

// TestApplyMatchesResizeThenCrop: the fused path (only crop pixels
// computed) equals a full resize followed by the crop, including padding.
func TestApplyMatchesResizeThenCrop(t *testing.T) {
	src := FromImage(testPicture(97, 61), "png")
	grey := FromImage(image.NewGray(image.Rect(0, 0, 50, 80)), "png")
	for i := range grey.Pix {
		grey.Pix[i] = uint8(i * 7)
	}
	for _, tc := range []struct {
		img *Image
		g   Geometry
	}{
		{src, Square(32)},
		{src, Square(61)},  // short side unchanged: vertical pass skipped
		{src, Square(150)}, // upscale
		{src, Geometry{Shortest: 40, CropW: 30, CropH: 50}},
		{src, Geometry{Shortest: 20, CropW: 45, CropH: 25}}, // crop wider than resized: zero padding
		{src, Geometry{ResizeW: 33, ResizeH: 70, CropW: 33, CropH: 70}},
		{grey, Square(24)},
	} {
		p, err := NewProcessor(tc.g)
		if err != nil {
			t.Fatal(err)
		}
		got := p.Apply(nil, tc.img)
		nw, nh := tc.g.ResizedSize(tc.img.W, tc.img.H)
		want := CenterCrop(Resize(tc.img, nw, nh), tc.g.CropW, tc.g.CropH)
		if !bytes.Equal(got, want) {
			t.Errorf("%+v: fused result differs from resize+crop", tc.g)
		}
	}
}

// TestCenterCropOffsets checks top=(h-ch)//2, left=(w-cw)//2 and padding.
func TestCenterCropOffsets(t *testing.T) {
	img := newImage(5, 4, 1)
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	got := CenterCrop(img, 2, 3) // left=(5-2)//2=1, top=(4-3)//2=0
	want := []byte{1, 2, 6, 7, 11, 12}
	for i, v := range want {
		if got[3*i] != v {
			t.Fatalf("crop = %v, want grey %v", got, want)
		}
	}
	// 7 wide from 5: left = (5-7)//2 = -1, so one zero column on the left.
	got = CenterCrop(img, 7, 1) // top = (4-1)//2 = 1
	wantRow := []byte{0, 5, 6, 7, 8, 9, 0}
	for i, v := range wantRow {
		if got[3*i] != v {
			t.Fatalf("padded crop row = %v, want %v", got, wantRow)
		}
	}
}

// TestResizeProperties: a flat image stays flat at every scale (the
// coefficients are normalised), and same-size resize is the identity.
func TestResizeProperties(t *testing.T) {
	flat := newImage(37, 23, 3)
	for i := range flat.Pix {
		flat.Pix[i] = 173
	}
	for _, s := range [][2]int{{5, 3}, {37, 23}, {100, 9}, {12, 80}} {
		out := Resize(flat, s[0], s[1])
		for _, v := range out.Pix {
			if v != 173 {
				t.Fatalf("flat image resized to %v has value %d", s, v)
			}
		}
	}
	src := FromImage(testPicture(37, 23), "png")
	if !bytes.Equal(Resize(src, 37, 23).Pix, src.Pix) {
		t.Fatal("same-size resize changed pixels")
	}
	// A pure horizontal resize leaves rows independent: all-equal rows stay equal.
	stripes := newImage(30, 4, 1)
	for y := 0; y < 4; y++ {
		for x := 0; x < 30; x++ {
			stripes.Pix[y*30+x] = uint8(x * 8)
		}
	}
	out := Resize(stripes, 11, 4)
	for y := 1; y < 4; y++ {
		if !bytes.Equal(out.Pix[y*11:(y+1)*11], out.Pix[:11]) {
			t.Fatal("rows diverged in a horizontal-only resize")
		}
	}
}

// TestKernelMatchesPillowFloat: fixed-point taps are Pillow's normalised
// float taps rounded half away from zero at 22 bits, and sum to ~1.
func TestKernelMatchesPillowFloat(t *testing.T) {
	for i, s := range [][2]int{{500, 298}, {100, 373}, {227, 224}, {1000, 224}, {37, 61}, {120, 29}} {
		k := newKernel(s[0], s[1], 0, s[1], Filter(i%2))
		for x := range k.start {
			var sum int64
			for _, c := range k.coeffs[x*k.ksize : x*k.ksize+k.n[x]] {
				sum += int64(c)
			}
			if d := math.Abs(float64(sum) - (1 << precisionBits)); !(d <= float64(k.n[x])) {
				t.Fatalf("%v out %d: taps sum to %d", s, x, sum)
			}
			if k.start[x] < 0 || k.start[x]+k.n[x] > s[0] {
				t.Fatalf("%v out %d: taps [%d,%d) outside input", s, x, k.start[x], k.start[x]+k.n[x])
			}
		}
	}
}

func TestConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"size": {"shortest_edge": 336}, "crop_size": {"height": 336, "width": 336},
		"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.5, 1], "rescale_factor": 0.5}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Shortest != 336 || c.CropW != 336 || c.CropH != 336 || c.Mean != [3]float32{0.5, 0.5, 0.5} || c.Std[0] != 0.25 || c.Rescale != 0.5 {
		t.Fatalf("parsed %+v", c)
	}
	c, err = ParseConfig([]byte(`{"size": 224, "crop_size": 224}`)) // older CLIP configs
	if err != nil || c.Shortest != 224 || c.CropH != 224 || c.Mean != CLIPMean || c.Std != CLIPStd {
		t.Fatalf("int sizes: %+v, %v", c, err)
	}
	c, err = ParseConfig([]byte(`{"size": {"height": 40, "width": 60}}`))
	if err != nil || c.Shortest != 0 || c.ResizeW != 60 || c.ResizeH != 40 || c.CropW != 60 || c.CropH != 40 {
		t.Fatalf("height/width size: %+v, %v", c, err)
	}
	for _, bad := range []string{`{"size": "x"}`, `{"size": {"longest_edge": 5}}`, `{"crop_size": 0}`,
		`{"image_mean": [1, 2]}`, `{"image_std": [1, 0, 1]}`, `{"do_center_crop": false}`, `{"resample": 0}`, `[`} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// TestForModel: a model directory's preprocessor file when it has one,
// CLIP's defaults at the model's size otherwise, and a crop that must be
// the model's size.
func TestForModel(t *testing.T) {
	none, with := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(with, ConfigFile), []byte(`{"size": 48, "crop_size": 40, "image_mean": [0.5, 0.5, 0.5]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := ForModel(none, 64); err != nil || c != DefaultConfig(64) {
		t.Fatalf("no file: %+v, %v", c, err)
	}
	for _, side := range []int{40, 0} {
		c, err := ForModel(with, side)
		if err != nil || c.Shortest != 48 || c.CropW != 40 || c.Mean != [3]float32{0.5, 0.5, 0.5} || c.Std != CLIPStd {
			t.Fatalf("side %d: %+v, %v", side, c, err)
		}
	}
	if _, err := ForModel(with, 32); err == nil || !strings.Contains(err.Error(), "crop 40x40 does not match the model's image_size 32") {
		t.Fatalf("crop mismatch: %v", err)
	}
	if _, err := ForModel(none, 0); err == nil || !strings.Contains(err.Error(), "neither "+ConfigFile+" nor config.json") {
		t.Fatalf("nothing to go by: %v", err)
	}
	// A SigLIP model without its preprocessor file must not get CLIP's
	// crop and statistics.
	siglip := t.TempDir()
	if err := os.WriteFile(filepath.Join(siglip, "config.json"), []byte(`{"model_type": "siglip"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ForModel(siglip, 64); err == nil || !strings.Contains(err.Error(), "a SigLIP model needs its "+ConfigFile) {
		t.Fatalf("SigLIP without %s: %v", ConfigFile, err)
	}
}

// TestNormalizeMatchesReference: the tiny CLIP reference holds uint8
// images and the pixel_values PyTorch fed the model; LoadConfig + Normalize
// must reproduce them.
func TestNormalizeMatchesReference(t *testing.T) {
	dir := sharedtest.Dir(t, "golden", "tiny-clip")
	c, err := LoadConfig(filepath.Join(dir, "model"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Shortest != 32 || c.CropW != 32 || c.CropH != 32 {
		t.Fatalf("tiny-clip geometry %+v", c.Geometry)
	}
	ref, err := safetensors.Load(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	u8, ok1 := ref.Tensors["pixels_u8"]
	pv, ok2 := ref.Tensors["pixel_values"]
	if !ok1 || !ok2 {
		t.Fatal("reference lacks pixels_u8 or pixel_values")
	}
	want, err := pv.Float32()
	if err != nil {
		t.Fatal(err)
	}
	per := 32 * 32 * 3
	got := make([]float32, per)
	var worst float64
	for b := 0; b < u8.Shape[0]; b++ {
		c.Normalize(got, u8.Data[b*per:(b+1)*per])
		for i, g := range got {
			worst = max(worst, math.Abs(float64(g-want[b*per+i])))
		}
	}
	t.Logf("max abs diff vs reference pixel_values: %g", worst)
	if !(worst <= 1e-6) {
		t.Fatalf("normalised pixels differ by %g", worst)
	}
}

// TestPoolBytes: images decoded in place from memory equal the same files
// decoded by Files, in order across workers; a bad image's slot is zeroed
// and its error names it, and the others are unaffected.
func TestPoolBytes(t *testing.T) {
	var data [][]byte
	var paths []string
	dir := t.TempDir()
	for i := range 9 {
		m := testPicture(20+i*7, 50-i*3)
		b := encode(t, png.Encode, m)
		if i%2 == 1 {
			b = encode(t, func(w io.Writer, m image.Image) error { return jpeg.Encode(w, m, nil) }, m)
		}
		if i == 4 {
			b = b[:len(b)/2] // truncated
		}
		path := filepath.Join(dir, "img"+string(rune('0'+i)))
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		data, paths = append(data, b), append(paths, path)
	}
	pool, err := NewPool(Square(12), 3)
	if err != nil {
		t.Fatal(err)
	}
	n := pool.OutLen()
	fromFiles := make([]byte, len(paths)*n)
	fileErrs := pool.Files(fromFiles, paths)
	fromBytes := bytes.Repeat([]byte{0xAA}, len(data)*n) // a failed slot must be zeroed
	errs := pool.Bytes(fromBytes, data, func(i int) string { return "row " + string(rune('0'+i)) })
	for i := range data {
		if (errs[i] == nil) != (fileErrs[i] == nil) || (errs[i] == nil) != (i != 4) {
			t.Fatalf("image %d: bytes error %v, file error %v", i, errs[i], fileErrs[i])
		}
		if !bytes.Equal(fromBytes[i*n:(i+1)*n], fromFiles[i*n:(i+1)*n]) {
			t.Errorf("image %d: pixels from bytes differ from the file's", i)
		}
	}
	if !strings.HasPrefix(errs[4].Error(), "row 4: ") || bytes.Count(fromBytes[4*n:5*n], []byte{0}) != n {
		t.Errorf("bad image: error %q, slot not zeroed", errs[4])
	}
}
