//go:build turbojpeg && cgo

package turbojpeg

/*
#cgo LDFLAGS: -lturbojpeg
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unsafe"
)

// rgbScratch holds the interleaved RGB that TurboJPEG writes before it is
// split into planes (a 500x375 photo is 560 KB; reusing it spares the GC).
var rgbScratch sync.Pool

// Decode decodes a JPEG into planes of W*H bytes: three (R, G, B) for
// Y'CbCr and RGB JPEGs, one for greyscale. ok is false, with no error, for
// CMYK and YCCK JPEGs, which Pillow keeps as CMYK: the caller converts
// those its own way.
func Decode(data []byte) (w, h, channels int, pix []byte, ok bool, err error) {
	if len(data) == 0 {
		return 0, 0, 0, nil, false, errors.New("empty JPEG")
	}
	hd := C.tjInitDecompress()
	if hd == nil {
		return 0, 0, 0, nil, false, fmt.Errorf("libjpeg-turbo: %s", C.GoString(C.tjGetErrorStr2(nil)))
	}
	defer C.tjDestroy(hd)
	src := (*C.uchar)(unsafe.Pointer(&data[0]))
	n := C.ulong(len(data))
	var cw, ch, subsamp, cs C.int
	if C.tjDecompressHeader3(hd, src, n, &cw, &ch, &subsamp, &cs) != 0 {
		return 0, 0, 0, nil, false, tjError(hd)
	}
	if cw <= 0 || ch <= 0 { // libjpeg ends a header cut short with a fake EOI
		return 0, 0, 0, nil, false, fmt.Errorf("no frame header (%dx%d): %w", cw, ch, io.ErrUnexpectedEOF)
	}
	w, h = int(cw), int(ch)
	// The same ISLOW IDCT Pillow's decoder uses (libjpeg's default, named
	// here so a changed TurboJPEG default cannot change the pixels). No
	// TJFLAG_FASTUPSAMPLE: Pillow upsamples chroma with the triangle filter.
	const flags = C.TJFLAG_ACCURATEDCT
	switch cs {
	case C.TJCS_GRAY:
		pix = make([]byte, w*h)
		if C.tjDecompress2(hd, src, n, (*C.uchar)(unsafe.Pointer(&pix[0])), cw, cw, ch, C.TJPF_GRAY, flags) != 0 {
			if err := tjFailure(hd); err != nil {
				return 0, 0, 0, nil, false, err
			}
		}
		return w, h, 1, pix, true, nil
	case C.TJCS_YCbCr, C.TJCS_RGB:
		rgb, _ := rgbScratch.Get().(*[]byte)
		if rgb == nil {
			rgb = new([]byte)
		}
		defer rgbScratch.Put(rgb)
		if cap(*rgb) < 3*w*h {
			*rgb = make([]byte, 3*w*h)
		}
		buf := (*rgb)[:3*w*h]
		if C.tjDecompress2(hd, src, n, (*C.uchar)(unsafe.Pointer(&buf[0])), cw, 3*cw, ch, C.TJPF_RGB, flags) != 0 {
			if err := tjFailure(hd); err != nil {
				return 0, 0, 0, nil, false, err
			}
		}
		pix = make([]byte, 3*w*h)
		r, g, b := pix[:w*h], pix[w*h:2*w*h], pix[2*w*h:]
		for i := range r {
			s := buf[3*i : 3*i+3 : 3*i+3]
			r[i], g[i], b[i] = s[0], s[1], s[2]
		}
		return w, h, 3, pix, true, nil
	}
	return w, h, 0, nil, false, nil
}

// tjFailure is the error after a TurboJPEG call returned -1, or nil when
// it only warned. libjpeg warns and fills with grey where Pillow also
// decodes (corrupt entropy data, extraneous bytes), except at a file cut
// short, which Pillow refuses as truncated: that warning is an error here.
func tjFailure(h C.tjhandle) error {
	if C.tjGetErrorCode(h) == C.TJERR_WARNING {
		msg := C.GoString(C.tjGetErrorStr2(h))
		if !strings.Contains(msg, "Premature end of JPEG file") {
			return nil
		}
		return fmt.Errorf("file is truncated (libjpeg-turbo: %s)", msg)
	}
	return tjError(h)
}

func tjError(h C.tjhandle) error {
	return fmt.Errorf("libjpeg-turbo: %s", C.GoString(C.tjGetErrorStr2(h)))
}
