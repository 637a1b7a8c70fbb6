package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/clipline/clipline/internal/dataset/parquet/pqtest"
	"github.com/clipline/clipline/internal/dataset/webdataset/wdstest"
	"github.com/clipline/clipline/internal/shard"
	"github.com/clipline/clipline/internal/shard/shardtest"
)

// TestParquet: the flags name the columns; the images' bytes and the
// captions come through; a bad row fails naming file and row, or is
// skipped and counted with --skip-bad.
func TestParquet(t *testing.T) {
	dir := t.TempDir()
	a, b := wdstest.Image(t, "png", 1), wdstest.Image(t, "jpeg", 2)
	path := filepath.Join(dir, "pairs.parquet")
	pqtest.Write(t, path, []arrow.Field{{Name: "picture", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "alt", Type: arrow.BinaryTypes.String}, {Name: "name", Type: arrow.BinaryTypes.String}},
		[]arrow.Array{pqtest.Binaries([]byte(a), nil, []byte(b)), pqtest.Strings("one", "two", "three"), pqtest.Strings("x", "y", "z")})
	out := filepath.Join(dir, "out.arrow")
	args := []string{"parquet", dir, "--image-column", "picture", "--caption-column", "alt", "--id-column", "name", "--out", out}
	err, _ := runErr(t, args...)
	if err == nil || !strings.Contains(err.Error(), "parquet "+path+": row 1: the image is null (use --skip-bad") {
		t.Fatalf("null image: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s", out)
	}
	log := runOK(t, append(args, "--skip-bad", "--split", "val")...)
	if !strings.Contains(log, "1 parquet files, 3 rows, skipped 1 bad rows") || !strings.Contains(log, "2 images (val=2), 2 captions") {
		t.Errorf("log:\n%s", log)
	}
	tb := readStream(t, out)
	if !slices.Equal(tb.ids, []string{"x", "z"}) || !slices.Equal(tb.splits, []string{"val", "val"}) ||
		!reflect.DeepEqual(tb.captions, [][]string{{"one"}, {"three"}}) || len(tb.images) != 2 ||
		!bytes.Equal(tb.images[0], []byte(a)) || !bytes.Equal(tb.images[1], []byte(b)) || tb.paths != nil {
		t.Errorf("rows %+v", tb)
	}
	if err, _ := runErr(t, "parquet", path, "--out", out); err == nil || !strings.Contains(err.Error(), "no image column (looked for image, jpg") {
		t.Errorf("default columns: %v", err)
	}
}

// TestShardParquet: sharded by row groups over the files in order (two
// files of 4 and 2 row groups; 7 parts leave one empty), the parts equal
// the unsharded stream: the split column kept, the draw over the other
// rows, the url column of one file only, a bad row skipped.
func TestShardParquet(t *testing.T) {
	dir := t.TempDir()
	files := filepath.Join(dir, "files")
	os.Mkdir(files, 0o755)
	var imgs [][]byte
	for i := range 10 {
		img := []byte(wdstest.Image(t, "png", uint8(i+1)))
		if i == 4 {
			img = nil // bad
		}
		imgs = append(imgs, img)
	}
	pqtest.Write(t, filepath.Join(files, "a.parquet"), []arrow.Field{{Name: "image", Type: arrow.BinaryTypes.Binary, Nullable: true},
		{Name: "caption", Type: arrow.BinaryTypes.String}, {Name: "split", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "url", Type: arrow.BinaryTypes.String}},
		[]arrow.Array{pqtest.Binaries(imgs[:7]...), pqtest.Strings("c0", "c1", "c2", "c3", "c4", "c5", "c6"),
			pqtest.Strings("<null>", "test", "", "<null>", "<null>", "val", "<null>"), pqtest.Strings("u0", "u1", "u2", "u3", "u4", "u5", "u6")})
	pqtest.Write(t, filepath.Join(files, "b.parquet"), []arrow.Field{{Name: "image", Type: arrow.BinaryTypes.Binary},
		{Name: "caption", Type: arrow.BinaryTypes.String}},
		[]arrow.Array{pqtest.Binaries(imgs[7:]...), pqtest.Strings("c7", "c8", "c9")})
	args := []string{"parquet", files, "--val-frac", "0.4", "--seed", "2", "--skip-bad"}
	whole := filepath.Join(dir, "whole.arrow")
	runOK(t, append(args, "--out", whole)...)
	shardtest.Check(t, whole, func(t *testing.T, part shard.Spec, out string) {
		runOK(t, append(args, "--shard", part.String(), "--out", out)...)
	})

	// An image_id in two parts' row groups is found although no part holds both.
	dup := filepath.Join(dir, "dup.parquet")
	pqtest.Write(t, dup, []arrow.Field{{Name: "image", Type: arrow.BinaryTypes.Binary}, {Name: "caption", Type: arrow.BinaryTypes.String},
		{Name: "key", Type: arrow.BinaryTypes.String}},
		[]arrow.Array{pqtest.Binaries(imgs[0], imgs[1], imgs[2]), pqtest.Strings("x", "y", "z"), pqtest.Strings("k", "j", "k")})
	err, _ := runErr(t, "parquet", dup, "--shard", "0/2", "--out", filepath.Join(dir, "dupparts"))
	if want := "parquet " + dup + ": row 2: image_id \"k\" duplicates " + dup + " row 0"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("duplicate across parts: %v, want %q", err, want)
	}
}
