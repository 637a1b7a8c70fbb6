//go:build !turbojpeg || !cgo

package imageproc

// JPEGDecoder names the JPEG decoder this build uses: Go's image/jpeg here,
// "libjpeg-turbo" in a build with -tags turbojpeg (see turbojpeg.go).
const JPEGDecoder = "image/jpeg"

func decodeJPEG(data []byte) (*Image, error) { return decodeGoJPEG(data) }
