package imageproc

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/safetensors"
	"github.com/clipline/clipline/internal/sharedtest"
)

// siglipCase is one entry of testdata/siglip_reference.safetensors'
// metadata (testdata/gen_siglip.py writes it with Pillow).
type siglipCase struct {
	Name     string `json:"name"`
	File     string `json:"file"`
	Dir      string `json:"dir"` // "shared" (../shared/golden/preprocess) or "here" (testdata)
	Size     [2]int `json:"size"`
	Out      [2]int `json:"out"` // w, h
	Resample int    `json:"resample"`
}

// TestSiglipParityWithPillow: SiglipImageProcessor's stretch resize
// (exactly w x h, no crop) with Pillow's bilinear and bicubic filters.
// Lossless inputs must match Pillow exactly; JPEG inputs within the CLIP
// path's bound (TestParityWithPillow: mean abs diff <= 2), since Go's IDCT
// is not libjpeg's.
func TestSiglipParityWithPillow(t *testing.T) {
	ref, err := safetensors.Load(filepath.Join("testdata", "siglip_reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []siglipCase
	if err := json.Unmarshal([]byte(ref.Metadata["cases"]), &cases); err != nil || len(cases) == 0 {
		t.Fatalf("reference metadata cases: %v (%d cases)", err, len(cases))
	}
	shared := ""
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			dir := "testdata"
			if tc.Dir == "shared" {
				if shared == "" {
					shared = sharedtest.Dir(t, "golden", "preprocess")
				}
				dir = shared
			}
			filter, err := PILFilter(tc.Resample)
			if err != nil {
				t.Fatal(err)
			}
			w, h := tc.Out[0], tc.Out[1]
			want, ok := ref.Tensors[tc.Name]
			if !ok || want.DType != "U8" || len(want.Data) != w*h*3 {
				t.Fatalf("reference tensor %q missing or not U8 %dx%dx3", tc.Name, h, w)
			}
			img, err := DecodeFile(filepath.Join(dir, tc.File))
			if err != nil {
				t.Fatal(err)
			}
			if img.W != tc.Size[0] || img.H != tc.Size[1] {
				t.Fatalf("decoded %dx%d, reference says %v", img.W, img.H, tc.Size)
			}
			p, err := NewProcessor(Geometry{ResizeW: w, ResizeH: h, CropW: w, CropH: h, Filter: filter})
			if err != nil {
				t.Fatal(err)
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
			t.Logf("%s (%dx%d -> %dx%d %v): max abs diff %d, mean abs diff %.4f", tc.File, img.W, img.H, w, h, filter, maxd, mean)
			if strings.HasSuffix(tc.File, ".jpg") {
				if !(mean <= 2) {
					t.Errorf("JPEG mean abs diff %.4f > 2", mean)
				}
			} else if maxd != 0 {
				t.Errorf("max abs diff %d, want 0 (Pillow-exact)", maxd)
			}
		})
	}
	t.Run("normalisation", func(t *testing.T) {
		want := ref.Tensors["normalized_levels"]
		if want.DType != "F32" || len(want.Data) != 256*4 {
			t.Fatal("reference normalized_levels missing or not F32[256]")
		}
		c, err := ParseConfig([]byte(`{"image_processor_type": "SiglipImageProcessor"}`))
		if err != nil {
			t.Fatal(err)
		}
		lut := c.LUT()
		for v := range 256 {
			w := math.Float32frombits(binary.LittleEndian.Uint32(want.Data[4*v:]))
			for ch := range 3 {
				if lut[ch][v] != w {
					t.Fatalf("level %d channel %d: %v, numpy gives %v", v, ch, lut[ch][v], w)
				}
			}
		}
	})
}

// TestSiglipConfig: SiglipImageProcessor's preprocessor_config.json gives
// the stretch geometry with its filter and 0.5 mean/std; CLIP's stays as it
// was.
func TestSiglipConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"do_normalize": true, "do_rescale": true, "do_resize": true,
		"image_mean": [0.5, 0.5, 0.5], "image_processor_type": "SiglipImageProcessor",
		"image_std": [0.5, 0.5, 0.5], "processor_class": "SiglipProcessor", "resample": 2,
		"rescale_factor": 0.00392156862745098, "size": {"height": 224, "width": 224}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Geometry{ResizeW: 224, ResizeH: 224, CropW: 224, CropH: 224, Filter: Bilinear}
	if c.Geometry != want || c.Mean != [3]float32{0.5, 0.5, 0.5} || c.Std != [3]float32{0.5, 0.5, 0.5} || c.Rescale != 1.0/255 {
		t.Fatalf("SigLIP config parsed as %+v", c)
	}
	// transformers' defaults for SiglipImageProcessor: 224 x 224, bicubic,
	// mean/std 0.5; crop_size means nothing to it.
	c, err = ParseConfig([]byte(`{"image_processor_type": "SiglipImageProcessor", "size": {"height": 384, "width": 384}, "crop_size": 100}`))
	if err != nil || c.Geometry != (Geometry{ResizeW: 384, ResizeH: 384, CropW: 384, CropH: 384, Filter: Bicubic}) || c.Mean[0] != 0.5 || c.Std[2] != 0.5 {
		t.Fatalf("SigLIP defaults: %+v, %v", c, err)
	}
	c, err = ParseConfig([]byte(`{"size": {"height": 32, "width": 48}, "do_center_crop": false, "do_normalize": false, "do_rescale": false}`))
	if err != nil || c.Geometry != (Geometry{ResizeW: 48, ResizeH: 32, CropW: 48, CropH: 32}) || c.Mean != [3]float32{} || c.Std != [3]float32{1, 1, 1} || c.Rescale != 1 {
		t.Fatalf("no crop, no normalise, no rescale: %+v, %v", c, err)
	}
	// CLIP's file: as before, bicubic shortest-edge resize and center crop.
	c, err = ParseConfig([]byte(`{"crop_size": {"height": 224, "width": 224}, "do_center_crop": true, "do_normalize": true,
		"do_resize": true, "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_processor_type": "CLIPImageProcessor",
		"image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "rescale_factor": 0.00392156862745098,
		"size": {"shortest_edge": 224}}`))
	if err != nil || c != DefaultConfig(224) {
		t.Fatalf("CLIP config: %+v, %v; want %+v", c, err, DefaultConfig(224))
	}
	for _, bad := range []string{
		`{"image_processor_type": "SiglipImageProcessor", "size": {"shortest_edge": 224}}`,
		`{"image_processor_type": "SiglipImageProcessor", "size": 224}`,
		`{"size": {"shortest_edge": 224}, "do_center_crop": false}`,
		`{"resample": 1}`,
	} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("ParseConfig(%s) accepted", bad)
		}
	}
}
