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
