package imageproc

import (
	"bytes"
	"image"
	"image/jpeg"
)

// Thumbnail decodes the image file as the decode stage does and resizes it
// (Pillow's bicubic) to width pixels wide (never wider than the image),
// keeping its aspect, as a JPEG of the given quality: the thumbnails
// serve's page and report's HTML show.
func Thumbnail(path string, width, quality int) ([]byte, error) {
	img, err := DecodeFile(path)
	if err != nil {
		return nil, err
	}
	return thumbnail(img, width, quality)
}

// ThumbnailBytes is Thumbnail of an encoded image in memory (a stream's
// image_bytes).
func ThumbnailBytes(data []byte, width, quality int) ([]byte, error) {
	img, err := Decode(data)
	if err != nil {
		return nil, err
	}
	return thumbnail(img, width, quality)
}

func thumbnail(img *Image, width, quality int) ([]byte, error) {
	width = min(width, img.W)
	height := max(1, (img.H*width+img.W/2)/img.W)
	small := Resize(img, width, height)
	rgb := small.HWC()
	out := image.NewRGBA(image.Rect(0, 0, width, height))
	for i := range width * height {
		copy(out.Pix[4*i:4*i+3], rgb[3*i:3*i+3])
		out.Pix[4*i+3] = 255
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, out, &jpeg.Options{Quality: quality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
