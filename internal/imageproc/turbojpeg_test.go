//go:build turbojpeg

package imageproc

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/testreq"
)

// TestTurboJPEGMatchesPillow: built with -tags turbojpeg, JPEGs decode
// through libjpeg-turbo with Pillow's settings, so every golden case
// (Pillow's own output, ../shared/golden/preprocess) must match exactly,
// JPEGs included. A tagged build without cgo falls back to Go's decoder
// silently; CI requires the real one (CLIPLINE_REQUIRE_TURBOJPEG=1).
func TestTurboJPEGMatchesPillow(t *testing.T) {
	if JPEGDecoder != "libjpeg-turbo" {
		testreq.Missing(t, "CLIPLINE_REQUIRE_TURBOJPEG", "the libjpeg-turbo decoder check",
			"the turbojpeg build fell back to "+JPEGDecoder+" (CGO_ENABLED=0?)",
			"apt-get install libturbojpeg0-dev; CGO_ENABLED=1 go test -tags turbojpeg ./internal/imageproc/")
	}
	dir, ref, cases := loadGolden(t)
	p, err := NewProcessor(Square(224))
	if err != nil {
		t.Fatal(err)
	}
	jpegs := 0
	for _, tc := range cases {
		img, err := DecodeFile(filepath.Join(dir, tc.File))
		if err != nil {
			t.Fatal(err)
		}
		got := p.Apply(nil, img)
		if want := ref.Tensors[tc.Name].Data; !bytes.Equal(got, want) {
			diff := 0
			for i := range got {
				if i < len(want) && got[i] != want[i] {
					diff++
				}
			}
			t.Errorf("%s: %d of %d bytes differ from Pillow's", tc.File, diff, len(got))
		}
		if strings.HasSuffix(tc.File, ".jpg") {
			jpegs++
		}
	}
	if jpegs == 0 {
		t.Fatal("the golden cases hold no JPEG")
	}
}
