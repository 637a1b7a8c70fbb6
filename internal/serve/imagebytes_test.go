package serve

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/index"
	"github.com/clipline/clipline/internal/stream"
)

// TestImagesFromBundle: an index of a self-contained stream (image_bytes)
// serves its images and thumbnails from the bundle, not from image_path
// (here naming files that do not exist): the bytes as indexed, and the
// thumbnail the files would give.
func TestImagesFromBundle(t *testing.T) {
	fixture(t)
	dir := t.TempDir()
	in, err := stream.Open(fix.stream)
	if err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(dir, "inside.arrows")
	files := map[string]string{} // image_id -> the file its bytes came from
	var id string                // the first row's
	_, err = stream.Transform(in, stream.TransformSpec{Stage: "test", Out: inside,
		Fields: []arrow.Field{stream.ImagePathField(), stream.ImageBytesField()},
		Fn: func(rec arrow.RecordBatch, _ int64) ([]arrow.Array, []bool, error) {
			ids, _ := stream.Strings(rec, stream.ColImageID)
			paths, err := stream.Strings(rec, stream.ColImagePath)
			var data [][]byte
			for i, p := range paths {
				b, err := os.ReadFile(p)
				if err != nil {
					return nil, nil, err
				}
				data, files[ids[i]], paths[i] = append(data, b), p, filepath.Join(dir, "gone", ids[i]+".png")
				if id == "" {
					id = ids[i]
				}
			}
			return []arrow.Array{stream.NewStrings(paths), stream.NewBinaries(data)}, nil, err
		}})
	in.Close()
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "inside.idx")
	if err := build(inside, bundle, index.BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	o := options(nil)
	o.Index = bundle
	s, ts := server(t, o)
	want, _ := os.ReadFile(files[id])
	code, body := call(t, "GET", ts.URL+"/v1/images/"+id, "", nil, nil)
	if code != 200 || body != string(want) {
		t.Fatalf("image %s: %d, %d bytes; want the %d indexed", id, code, len(body), len(want))
	}
	thumb, err := imageproc.Thumbnail(files[id], 16, thumbQuality)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if code, body = call(t, "GET", ts.URL+"/v1/images/"+id+"?w=16", "", nil, nil); code != 200 || !bytes.Equal([]byte(body), thumb) {
			t.Errorf("thumbnail: %d, %d bytes; want the file's %d", code, len(body), len(thumb))
		}
	}
	if n, _ := s.thumbs.len(); n != 1 {
		t.Errorf("%d thumbnails cached, want 1", n)
	}
}
