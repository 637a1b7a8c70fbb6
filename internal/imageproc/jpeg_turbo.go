//go:build turbojpeg && cgo

package imageproc

import "github.com/clipline/clipline/internal/imageproc/turbojpeg"

// JPEGDecoder names the JPEG decoder this build uses.
const JPEGDecoder = "libjpeg-turbo"

func decodeJPEG(data []byte) (*Image, error) {
	w, h, c, pix, ok, err := turbojpeg.Decode(data)
	if err != nil {
		return nil, err
	}
	if !ok { // CMYK / YCCK: Pillow's cmyk2rgb, as FromImage does it
		return decodeGoJPEG(data)
	}
	return &Image{W: w, H: h, C: c, Pix: pix}, nil
}
