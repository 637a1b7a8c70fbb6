package report

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/clipline/clipline/internal/index/indextest"
)

// TestLoadImages: the thumbnails come from image_bytes when --paths-from
// carries them (its image_path naming no files), mapped from an IPC file or
// copied from a stream, and the page equals the one made from the files.
func TestLoadImages(t *testing.T) {
	f := makeFixture(t)
	want := f.page(t)
	rows := f.rows[0]
	for i := range rows {
		data, err := os.ReadFile(rows[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		rows[i].Bytes, rows[i].Path = data, filepath.Join(f.dir, "gone", rows[i].ID+".png")
	}
	for _, name := range []string{"inside.arrow", "inside.arrows"} {
		path := filepath.Join(f.dir, name)
		indextest.Write(t, path, fixDim, 16, rows, nil)
		im, err := LoadImages(path)
		if err != nil {
			t.Fatal(err)
		}
		if im.Len() != fixN || im.Paths != nil || !bytes.Equal(im.Bytes[rows[3].ID], rows[3].Bytes) {
			t.Fatalf("%s: %d images, paths %v", name, im.Len(), im.Paths)
		}
		in := f.input(t)
		in.Images = im
		got, err := BuildPage(in)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the page from image_bytes differs from the one from the files", name)
		}
		if err := im.Close(); err != nil {
			t.Error(err)
		}
	}
	im, err := LoadImages(filepath.Join(f.dir, "before.arrow"))
	if err != nil || im.Bytes != nil || im.Paths[f.rows[1][0].ID] != f.paths[f.rows[1][0].ID] {
		t.Errorf("image_path stream: %+v, %v", im, err)
	}
}
