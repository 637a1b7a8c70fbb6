package decode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/stream"
)

// TestGeometry: --size, or a model directory's preprocessing at its
// config.json's image size, the crop square and the model's size.
func TestGeometry(t *testing.T) {
	write := func(dir, name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfgOnly, preOnly, both, nonSquare := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	write(cfgOnly, "config.json", `{"vision_config": {"image_size": 64}}`)
	write(preOnly, "preprocessor_config.json", `{"size": 12, "crop_size": 12}`)
	write(both, "config.json", `{"vision_config": {"image_size": 64}}`)
	write(both, "preprocessor_config.json", `{"size": 48, "crop_size": 48}`)
	write(nonSquare, "preprocessor_config.json", `{"size": 20, "crop_size": {"height": 16, "width": 20}}`)
	siglip := t.TempDir()
	write(siglip, "config.json", `{"vision_config": {"image_size": 32}}`)
	write(siglip, "preprocessor_config.json", `{"image_processor_type": "SiglipImageProcessor", "resample": 2,
		"size": {"height": 32, "width": 32}, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}`)
	for _, c := range []struct {
		dir  string
		size int
		want int    // crop side
		err  string // or an error
	}{
		{"", 8, 8, ""},
		{"", -1, 0, "--size -1 must be positive"},
		{"", 0, 0, "give --model DIR or --size N"},
		{cfgOnly, 0, 64, ""},
		{preOnly, 0, 12, ""},
		{t.TempDir(), 0, 0, "neither preprocessor_config.json nor config.json"},
		{both, 0, 0, "crop 48x48 does not match the model's image_size 64"},
		{nonSquare, 0, 0, "crop 20x16 is not square"},
		{siglip, 0, 32, ""},
	} {
		g, err := Geometry(c.dir, c.size)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Geometry(%q, %d): %+v, %v; want an error with %q", c.dir, c.size, g, err, c.err)
			}
			continue
		}
		if err != nil || g.CropW != c.want || g.CropH != c.want {
			t.Errorf("Geometry(%q, %d) = %+v, %v; want crop %d", c.dir, c.size, g, err, c.want)
		}
	}
	// SigLIP: stretched to 32 x 32 with the bilinear filter, no crop.
	g, err := Geometry(siglip, 0)
	if want := (imageproc.Geometry{ResizeW: 32, ResizeH: 32, CropW: 32, CropH: 32, Filter: imageproc.Bilinear}); err != nil || g != want {
		t.Errorf("SigLIP geometry %+v, %v; want %+v", g, err, want)
	}
}

// TestNewSource: image_bytes wins over image_path, either alone is enough,
// and a wrongly typed image_bytes or no image column is refused.
func TestNewSource(t *testing.T) {
	pool, err := imageproc.NewPool(imageproc.Square(4), 1)
	if err != nil {
		t.Fatal(err)
	}
	schema := func(fs ...arrow.Field) *arrow.Schema { return arrow.NewSchema(fs, nil) }
	for _, c := range []struct {
		schema *arrow.Schema
		col    string // the column read, or
		err    string
	}{
		{schema(stream.ImagePathField(), stream.ImageBytesField()), stream.ColImageBytes, ""},
		{schema(stream.ImageBytesField()), stream.ColImageBytes, ""},
		{schema(stream.ImageIDField(), stream.ImagePathField()), stream.ColImagePath, ""},
		{schema(stream.ImagePathField(), arrow.Field{Name: stream.ColImageBytes, Type: arrow.BinaryTypes.String}), "", "column image_bytes has type utf8, want binary"},
		{schema(stream.ImageIDField()), "", "neither image_bytes nor image_path to decode; prepare writes them"},
	} {
		s, err := NewSource(c.schema, "", pool)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%v: %v, want %q", c.schema, err, c.err)
			}
			continue
		}
		if err != nil || s.Column() != c.col {
			t.Errorf("%v: %v, want column %s", c.schema, err, c.col)
		}
	}
}
