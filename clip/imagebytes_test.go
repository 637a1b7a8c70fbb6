package clip_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/clipline/clipline/clip"
	"github.com/clipline/clipline/internal/index"
	"github.com/clipline/clipline/internal/index/indextest"
	"github.com/clipline/clipline/internal/stream"
)

// TestIndexImageBytes: a bundle of a stream with image_bytes gives each
// row's bytes back; one without gives nil.
func TestIndexImageBytes(t *testing.T) {
	dir := t.TempDir()
	var rows []indextest.Row
	for i := range 5 {
		v := make([]float32, 4)
		v[i%4] = 1
		rows = append(rows, indextest.Row{ID: fmt.Sprint("img", i), Path: "gone.png", Split: "test", Captions: []string{"c"},
			Image: v, CaptionVecs: [][]float32{v}, Bytes: bytes.Repeat([]byte{byte(i)}, 100+i)})
	}
	open := func(name string, rows []indextest.Row) *clip.Index {
		t.Helper()
		in := filepath.Join(dir, name+".arrow")
		indextest.Write(t, in, 4, 2, rows, nil)
		r, err := stream.Open(in)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := index.Build(r, filepath.Join(dir, name), index.BuildOptions{}); err != nil {
			t.Fatal(err)
		}
		ix, err := clip.OpenIndex(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ix.Close() })
		return ix
	}
	ix := open("inside", rows)
	hits, err := ix.SearchVector([]float32{0, 0, 1, 0}, 1)
	if err != nil || hits[0].ImageID != "img2" || !bytes.Equal(ix.ImageBytes(hits[0].Row), rows[2].Bytes) {
		t.Errorf("hit %+v (%v): %d bytes, want img2's %d", hits, err, len(ix.ImageBytes(hits[0].Row)), len(rows[2].Bytes))
	}
	for i := range rows {
		rows[i].Bytes = nil
	}
	if b := open("plain", rows).ImageBytes(0); b != nil {
		t.Errorf("a bundle without image_bytes gave %d bytes", len(b))
	}
}
