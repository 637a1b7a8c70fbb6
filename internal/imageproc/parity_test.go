package imageproc

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/safetensors"
	"github.com/clipline/clipline/internal/sharedtest"
)

type goldenCase struct {
	Name    string `json:"name"`
	File    string `json:"file"`
	Mode    string `json:"mode"`
	Size    [2]int `json:"size"`    // w, h
	Resized [2]int `json:"resized"` // w, h
}

func loadGolden(t testing.TB) (string, *safetensors.File, []goldenCase) {
	t.Helper()
	dir := sharedtest.Dir(t, "golden", "preprocess")
	ref, err := safetensors.Load(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal([]byte(ref.Metadata["cases"]), &cases); err != nil {
		t.Fatalf("reference metadata cases: %v", err)
	}
	if len(cases) == 0 {
		t.Fatal("reference lists no cases")
	}
	return dir, ref, cases
}

// TestParityWithPillow compares against Hugging Face's CLIP preprocessing
// done with Pillow: exact-format cases within 1 level everywhere, JPEG
// cases (Go's IDCT differs from libjpeg's) within a mean of 2 levels; the
// turbojpeg build must match all of them exactly (turbojpeg_test.go).
func TestParityWithPillow(t *testing.T) {
	dir, ref, cases := loadGolden(t)
	p, err := NewProcessor(Square(224))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			want, ok := ref.Tensors[tc.Name]
			if !ok || want.DType != "U8" || len(want.Data) != 224*224*3 {
				t.Fatalf("reference tensor %q missing or not U8 224x224x3", tc.Name)
			}
			img, err := DecodeFile(filepath.Join(dir, tc.File))
			if err != nil {
				t.Fatal(err)
			}
			if img.W != tc.Size[0] || img.H != tc.Size[1] {
				t.Fatalf("decoded %dx%d, reference says %v", img.W, img.H, tc.Size)
			}
			if rw, rh := p.Geometry().ResizedSize(img.W, img.H); rw != tc.Resized[0] || rh != tc.Resized[1] {
				t.Fatalf("resized to %dx%d, reference says %v", rw, rh, tc.Resized)
			}
			got := p.Apply(nil, img)
			maxd, sum := 0, 0
			for i, g := range got {
				d := int(g) - int(want.Data[i])
				if d < 0 {
					d = -d
				}
				sum += d
				maxd = max(maxd, d)
			}
			mean := float64(sum) / float64(len(got))
			t.Logf("%s (%s %dx%d -> %dx%d): max abs diff %d, mean abs diff %.4f",
				tc.File, tc.Mode, img.W, img.H, tc.Resized[0], tc.Resized[1], maxd, mean)
			if strings.HasSuffix(tc.File, ".jpg") || strings.HasSuffix(tc.File, ".jpeg") {
				if !(mean <= 2) {
					t.Errorf("JPEG mean abs diff %.4f > 2", mean)
				}
			} else if maxd > 1 {
				t.Errorf("max abs diff %d > 1", maxd)
			}
		})
	}
}
