package parquet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/clipline/clipline/internal/dataset"
	"github.com/clipline/clipline/internal/dataset/parquet/pqtest"
	"github.com/clipline/clipline/internal/dataset/webdataset/wdstest"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/testreq"
)

// hfImages builds Hugging Face Image structs; a nil image has only a path.
func hfImages(imgs [][]byte, paths []string) (arrow.DataType, arrow.Array) {
	dt := arrow.StructOf(arrow.Field{Name: "bytes", Type: arrow.BinaryTypes.Binary, Nullable: true},
		arrow.Field{Name: "path", Type: arrow.BinaryTypes.String, Nullable: true})
	b := array.NewStructBuilder(memory.DefaultAllocator, dt)
	for i, img := range imgs {
		b.Append(true)
		if img == nil {
			b.FieldBuilder(0).AppendNull()
		} else {
			b.FieldBuilder(0).(*array.BinaryBuilder).Append(img)
		}
		b.FieldBuilder(1).(*array.StringBuilder).Append(paths[i])
	}
	return dt, b.NewArray()
}

func captionLists(rows ...[]string) arrow.Array {
	b := array.NewListBuilder(memory.DefaultAllocator, arrow.BinaryTypes.String)
	for _, r := range rows {
		b.Append(true)
		for _, c := range r {
			b.ValueBuilder().(*array.StringBuilder).Append(c)
		}
	}
	return b.NewArray()
}

// readBack reads a prepared stream's rows.
func readBack(t *testing.T, path string) ([]dataset.Row, []string) {
	t.Helper()
	r, err := stream.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var names []string
	for _, f := range r.Schema().Fields() {
		names = append(names, f.Name)
	}
	var rows []dataset.Row
	for r.Next() {
		rec := r.Batch()
		ids, _ := stream.Strings(rec, stream.ColImageID)
		splits, _ := stream.Strings(rec, stream.ColSplit)
		imgs, err := stream.Binaries(rec, stream.ColImageBytes)
		if err != nil {
			t.Fatal(err)
		}
		caps, _ := stream.StringLists(rec, stream.ColCaptions)
		var urls *array.String
		if idx := rec.Schema().FieldIndices(dataset.ColURL); len(idx) == 1 {
			urls = rec.Column(idx[0]).(*array.String)
		}
		for i := range ids {
			row := dataset.Row{ImageID: ids[i], Split: splits[i], ImageBytes: slices.Clone(imgs[i]), Captions: caps[i]}
			if urls != nil && urls.IsValid(i) {
				row.URL = urls.Value(i)
			}
			rows = append(rows, row)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return rows, names
}

func prepare(t *testing.T, files []string, o Options) ([]dataset.Row, []string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.arrow")
	var log bytes.Buffer
	o.Log = &log
	if _, err := Prepare(files, o, dataset.WriteOptions{Out: out, Log: &log}); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	rows, names := readBack(t, out)
	return rows, names, log.String()
}

func sameRows(t *testing.T, got, want []dataset.Row) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ImageID != w.ImageID || g.Split != w.Split || !bytes.Equal(g.ImageBytes, w.ImageBytes) || !slices.Equal(g.Captions, w.Captions) || g.URL != w.URL {
			t.Errorf("row %d: got {%s %s %d bytes %q %q}, want {%s %s %d bytes %q %q}", i,
				g.ImageID, g.Split, len(g.ImageBytes), g.Captions, g.URL, w.ImageID, w.Split, len(w.ImageBytes), w.Captions, w.URL)
		}
	}
}

func images(t *testing.T, n int) [][]byte {
	var out [][]byte
	for i := range n {
		out = append(out, []byte(wdstest.Image(t, []string{"jpeg", "png", "webp"}[i%3], uint8(i+1))))
	}
	return out
}

// TestImg2dataset: img2dataset's parquet output (key, jpg, caption, url,
// status) over several row groups and two files of a directory; a row it
// could not download (null jpg, status not success) is counted, not bad.
func TestImg2dataset(t *testing.T) {
	dir := t.TempDir()
	imgs := images(t, 5)
	fields := []arrow.Field{{Name: "key", Type: arrow.BinaryTypes.String}, {Name: "jpg", Type: arrow.BinaryTypes.Binary},
		{Name: "caption", Type: arrow.BinaryTypes.String, Nullable: true}, {Name: "url", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "status", Type: arrow.BinaryTypes.String}}
	pqtest.Write(t, filepath.Join(dir, "00000.parquet"), fields, []arrow.Array{
		pqtest.Strings("000000000", "000000001", "000000002", "000000003"), pqtest.Binaries(imgs[0], imgs[1], imgs[2], nil),
		pqtest.Strings("a dog", " a cat\n", "a bird", "<null>"), pqtest.Strings("https://e.com/0", "<null>", "https://e.com/2", "https://e.com/x"),
		pqtest.Strings("success", "success", "success", "failed_to_download")})
	pqtest.Write(t, filepath.Join(dir, "00001.parquet"), fields, []arrow.Array{
		pqtest.Strings("000010000", "000010001"), pqtest.Binaries(imgs[3], imgs[4]),
		pqtest.Strings("a fish", "a frog"), pqtest.Strings("https://e.com/3", "https://e.com/4"), pqtest.Strings("success", "success")})
	os.WriteFile(filepath.Join(dir, "00000_stats.json"), []byte("{}"), 0o644)
	files, err := Files([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if src, err := open(files[0], Options{}); err != nil || src.pf.NumRowGroups() != 2 {
		t.Fatalf("%s: want 2 row groups (%v)", files[0], err)
	} else {
		src.pf.Close()
	}
	o := Options{Draw: dataset.Fractions{Val: 0.2, Test: 0.2, Seed: 3}}
	got, names, log := prepare(t, files, o)
	if want := []string{"image_id", "split", "image_bytes", "captions", "url"}; !slices.Equal(names, want) {
		t.Errorf("columns %v", names)
	}
	splits := o.Draw.Draw(6)
	want := []dataset.Row{
		{ImageID: "000000000", Split: splits[0], ImageBytes: imgs[0], Captions: []string{"a dog"}, URL: "https://e.com/0"},
		{ImageID: "000000001", Split: splits[1], ImageBytes: imgs[1], Captions: []string{"a cat"}},
		{ImageID: "000000002", Split: splits[2], ImageBytes: imgs[2], Captions: []string{"a bird"}, URL: "https://e.com/2"},
		{ImageID: "000010000", Split: splits[4], ImageBytes: imgs[3], Captions: []string{"a fish"}, URL: "https://e.com/3"},
		{ImageID: "000010001", Split: splits[5], ImageBytes: imgs[4], Captions: []string{"a frog"}, URL: "https://e.com/4"},
	}
	sameRows(t, got, want)
	if !strings.Contains(log, "prepare: 2 parquet files, 6 rows\nprepare: skipped 1 rows that img2dataset could not download (status not success)\n") {
		t.Errorf("log:\n%s", log)
	}
}

// TestHuggingFace: an Image struct, caption lists, an integer id and a
// split column whose values are kept (the draw is over the others).
func TestHuggingFace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "train-00000-of-00001.parquet")
	imgs := images(t, 4)
	dt, img := hfImages(imgs, []string{"a.jpg", "b.png", "c.webp", "d.jpg"})
	idb := array.NewInt64Builder(memory.DefaultAllocator)
	idb.AppendValues([]int64{7, 8, 9, 10}, nil)
	pqtest.Write(t, path, []arrow.Field{{Name: "image", Type: dt}, {Name: "caption", Type: arrow.ListOf(arrow.BinaryTypes.String)},
		{Name: "img_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "split", Type: arrow.BinaryTypes.String, Nullable: true}},
		[]arrow.Array{img, captionLists([]string{"one", "uno"}, []string{"two"}, []string{"three", "drei", "trois"}, []string{"four"}),
			idb.NewArray(), pqtest.Strings("test", "<null>", "val", "")})
	o := Options{Split: "dev", Draw: dataset.Fractions{Test: 0.5, Seed: 1}}
	got, names, log := prepare(t, []string{path}, o)
	if want := []string{"image_id", "split", "image_bytes", "captions"}; !slices.Equal(names, want) {
		t.Errorf("columns %v", names)
	}
	draw := o.Draw.Draw(2) // rows 1 and 3 have no split value
	for i, s := range draw {
		if s == dataset.Train {
			draw[i] = "dev"
		}
	}
	sameRows(t, got, []dataset.Row{
		{ImageID: "7", Split: "test", ImageBytes: imgs[0], Captions: []string{"one", "uno"}},
		{ImageID: "8", Split: draw[0], ImageBytes: imgs[1], Captions: []string{"two"}},
		{ImageID: "9", Split: "val", ImageBytes: imgs[2], Captions: []string{"three", "drei", "trois"}},
		{ImageID: "10", Split: draw[1], ImageBytes: imgs[3], Captions: []string{"four"}},
	})
	if !strings.Contains(log, "2 rows kept the split their split column or file name gives") {
		t.Errorf("log:\n%s", log)
	}
}

// TestSplitFromName: without a split column, files named as Hugging Face
// names a split's files give their rows that split ("validation" as val);
// the draw is over the other files' rows.
func TestSplitFromName(t *testing.T) {
	dir := t.TempDir()
	imgs := images(t, 6)
	fields := []arrow.Field{{Name: "image", Type: arrow.BinaryTypes.Binary}, {Name: "text", Type: arrow.BinaryTypes.String}}
	var paths []string
	for i, name := range []string{"train-00000-of-00001.parquet", "validation-00000-of-00001.parquet", "extra.parquet"} {
		p := filepath.Join(dir, name)
		pqtest.Write(t, p, fields, []arrow.Array{pqtest.Binaries(imgs[2*i], imgs[2*i+1]), pqtest.Strings("a", "b")})
		paths = append(paths, p)
	}
	o := Options{Draw: dataset.Fractions{Test: 0.5, Seed: 9}}
	got, _, log := prepare(t, paths, o)
	draw := o.Draw.Draw(2)
	var splits []string
	for _, r := range got {
		splits = append(splits, r.Split)
	}
	if want := []string{"train", "train", "val", "val", draw[0], draw[1]}; !slices.Equal(splits, want) {
		t.Errorf("splits %v, want %v", splits, want)
	}
	if !strings.Contains(log, paths[1]+" is split val by its name") || !strings.Contains(log, "4 rows kept the split") {
		t.Errorf("log:\n%s", log)
	}
	for name, want := range map[string]string{"test-00003-of-00010.parquet": "test", "train-0-of-1.parquet": "", "dev-00000-of-00001.parquet": "", "00000.parquet": ""} {
		if got := nameSplit(name); got != want {
			t.Errorf("nameSplit(%s) = %q, want %q", name, got, want)
		}
	}
}

func TestBadRows(t *testing.T) {
	dir := t.TempDir()
	imgs := images(t, 2)
	dt, img := hfImages([][]byte{imgs[0], nil, []byte("GIF9 not an image"), imgs[1], imgs[0]}, []string{"a", "/data/b.jpg", "c", "d", "e"})
	path := filepath.Join(dir, "bad.parquet")
	pqtest.Write(t, path, []arrow.Field{{Name: "image", Type: dt}, {Name: "text", Type: arrow.BinaryTypes.String, Nullable: true}},
		[]arrow.Array{img, pqtest.Strings("ok", "x", "y", "  ", "fine")})
	out := filepath.Join(dir, "out.arrow")
	_, err := Prepare([]string{path}, Options{}, dataset.WriteOptions{Out: out})
	if err == nil || err.Error() != "parquet "+path+`: row 1: the image has no bytes, only the path "/data/b.jpg" (the stream needs the image itself) (use --skip-bad to skip such rows)` {
		t.Errorf("bad row: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s", out)
	}
	got, _, log := prepare(t, []string{path}, Options{SkipBad: true})
	sameRows(t, got, []dataset.Row{
		{ImageID: "bad/0", Split: "train", ImageBytes: imgs[0], Captions: []string{"ok"}},
		{ImageID: "bad/4", Split: "train", ImageBytes: imgs[0], Captions: []string{"fine"}},
	})
	for _, want := range []string{
		"parquet " + path + `: row 1: the image has no bytes, only the path "/data/b.jpg"`,
		"parquet " + path + `: row 2: the image is not an image file (it starts with "GIF9 not an ")`,
		"parquet " + path + ": row 3: caption 0 is empty: skipped",
		"prepare: 1 parquet files, 5 rows, skipped 3 bad rows",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestColumnErrors(t *testing.T) {
	dir := t.TempDir()
	meta := filepath.Join(dir, "meta.parquet") // img2dataset's webdataset metadata: no images
	pqtest.Write(t, meta, []arrow.Field{{Name: "key", Type: arrow.BinaryTypes.String}, {Name: "caption", Type: arrow.BinaryTypes.String}},
		[]arrow.Array{pqtest.Strings("k"), pqtest.Strings("c")})
	ints := filepath.Join(dir, "ints.parquet")
	ib := array.NewInt32Builder(memory.DefaultAllocator)
	ib.Append(1)
	pqtest.Write(t, ints, []arrow.Field{{Name: "image", Type: arrow.BinaryTypes.Binary}, {Name: "caption", Type: arrow.PrimitiveTypes.Int32}},
		[]arrow.Array{pqtest.Binaries([]byte("x")), ib.NewArray()})
	for _, c := range []struct {
		path string
		o    Options
		want string
	}{
		{meta, Options{}, "parquet " + meta + ": no image column (looked for image, jpg, png, webp, img; name it with --image-column); the columns are key, caption"},
		{meta, Options{ImageColumn: "pixels"}, `no image column "pixels" (--image-column); the columns are key, caption`},
		{meta, Options{ImageColumn: "key"}, "image column key is utf8: want binary or a struct"},
		{ints, Options{}, "caption column caption is int32: want string or list<string>"},
		{filepath.Join(dir, "none.parquet"), Options{}, "none.parquet"},
	} {
		out := filepath.Join(dir, "out.arrow")
		if _, err := Prepare([]string{c.path}, c.o, dataset.WriteOptions{Out: out}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("a failed run left %s", out)
		}
	}
	if _, err := Files([]string{t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no .parquet files in directory") {
		t.Errorf("empty directory: %v", err)
	}
}

// duckdbDir is testdata/duckdb, whose write.mjs writes parquet with DuckDB.
func duckdbDir() string {
	_, file, _, _ := runtime.Caller(0) // <repo>/internal/dataset/parquet/parquet_test.go
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "duckdb")
}

// TestDuckDB reads a file that DuckDB wrote (a parquet writer independent
// of arrow-go), shaped as Hugging Face's: Image structs, caption lists, an
// integer id, a split column.
func TestDuckDB(t *testing.T) {
	hint := "install with: npm ci --prefix testdata/duckdb"
	if _, err := exec.LookPath("node"); err != nil {
		testreq.Missing(t, "CLIPLINE_REQUIRE_NODE", "the DuckDB parquet test", "node is not installed", hint)
	}
	if _, err := os.Stat(filepath.Join(duckdbDir(), "node_modules", "@duckdb", "node-api", "package.json")); err != nil {
		testreq.Missing(t, "CLIPLINE_REQUIRE_NODE", "the DuckDB parquet test", "the npm package @duckdb/node-api is not installed in testdata/duckdb", hint)
	}
	dir := t.TempDir()
	names := []string{"a.jpg", "b.png", "c.jpg", "d.png", "e.jpg"}
	var imgs [][]byte
	for i, n := range names {
		imgs = append(imgs, []byte(wdstest.Image(t, map[string]string{"jpg": "jpeg", "png": "png"}[n[2:]], uint8(i+1))))
		if err := os.WriteFile(filepath.Join(dir, n), imgs[i], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "duck.parquet")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(duckdbDir(), "write.mjs"), path, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("node write.mjs: %v\n%s", err, out)
	}
	// The file has the shape meant: so the Image struct and list paths are read.
	src, err := open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !src.hfImage || src.id != "img_id" || src.split != "split" {
		t.Errorf("DuckDB's file: Image struct %v, id %q, split %q", src.hfImage, src.id, src.split)
	}
	src.pf.Close()
	got, cols, _ := prepare(t, []string{path}, Options{})
	if want := []string{"image_id", "split", "image_bytes", "captions"}; !slices.Equal(cols, want) {
		t.Errorf("columns %v", cols)
	}
	var want []dataset.Row
	for i := range names {
		split := dataset.Train
		if i == 1 {
			split = dataset.Test
		}
		want = append(want, dataset.Row{ImageID: fmt.Sprint(100 + i), Split: split, ImageBytes: imgs[i],
			Captions: []string{fmt.Sprintf("caption %d a", i), fmt.Sprintf("caption %d b", i)}})
	}
	sameRows(t, got, want)
}
