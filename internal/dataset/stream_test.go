package dataset

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/clipline/clipline/internal/shard"
	"github.com/clipline/clipline/internal/stream"
)

// TestWrite: rows come back from the stream in order across record
// batches, with prepare's provenance; invalid rows write nothing.
func TestWrite(t *testing.T) {
	rows := make([]Row, batchRows+5)
	for i := range rows {
		rows[i] = Row{ImageID: fmt.Sprint(i), Split: Train, ImagePath: fmt.Sprintf("/img/%d.png", i), Captions: []string{"a", fmt.Sprint("caption ", i)}}
	}
	out := filepath.Join(t.TempDir(), "out.arrow")
	var log bytes.Buffer
	if err := Write(rows, WriteOptions{Out: out, Args: []string{"x"}, Log: &log}); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("prepare: %d images (train=%d), %d captions -> %s in", len(rows), len(rows), 2*len(rows), out); !strings.HasPrefix(log.String(), want) {
		t.Errorf("log %q, want %q...", log.String(), want)
	}
	got, schema := readRows(t, out)
	if steps, err := stream.Provenance(schema); err != nil || len(steps) != 1 || steps[0].Stage != "prepare" || !slices.Equal(steps[0].Args, []string{"x"}) {
		t.Errorf("provenance %+v, %v", steps, err)
	}
	if !slices.EqualFunc(got, rows, sameRow) {
		t.Fatalf("%d rows read back differ from the %d written", len(got), len(rows))
	}

	bad := filepath.Join(t.TempDir(), "bad.arrow")
	if err := Write([]Row{{ImageID: "a", Split: Train, ImagePath: "/a"}}, WriteOptions{Out: bad}); err == nil || !strings.Contains(err.Error(), "no captions") {
		t.Errorf("invalid rows: %v", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("invalid rows left %s (stat: %v)", bad, err)
	}
}

// TestWriterImages: a source without files streams rows with image_bytes
// and url (null where unknown) in batches bounded by their bytes; a row
// that breaks the stream's columns is refused naming it.
func TestWriterImages(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bytes.arrow")
	cols := Columns{ImageBytes: true, URL: true}
	w, err := NewWriter(cols, WriteOptions{Out: out, Args: []string{"webdataset"}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	big := make([]byte, batchBytes/2+1) // two rows fill a batch
	var want []Row
	for i := range 5 {
		img := append([]byte(fmt.Sprint("image ", i)), big...)
		r := Row{ImageID: fmt.Sprint("k", i), Split: Val, ImageBytes: img, Captions: []string{fmt.Sprint("c", i)}}
		if i%2 == 0 {
			r.URL = fmt.Sprint("https://example.com/", i)
		}
		want = append(want, r)
		if err := w.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, schema := readRows(t, out)
	var names []string
	for _, f := range schema.Fields() {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, []string{"image_id", "split", "image_bytes", "captions", "url"}) {
		t.Errorf("columns %v", names)
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if !sameRow(got[i], want[i]) {
			t.Errorf("row %d differs: %s %s %q", i, got[i].ImageID, got[i].Split, got[i].URL)
		}
	}

	for _, c := range []struct {
		row  Row
		want string
	}{
		{Row{ImageID: "a", Split: Train, Captions: []string{"c"}}, "row 0 (a): no image bytes"},
		{Row{ImageID: "a", Split: Train, ImagePath: "/a", ImageBytes: []byte("x"), Captions: []string{"c"}}, "row 0 (a): an image_path where the stream has none"},
	} {
		bad := filepath.Join(t.TempDir(), "bad.arrow")
		w, err := NewWriter(Columns{ImageBytes: true}, WriteOptions{Out: bad})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Add(c.row); err == nil || err.Error() != c.want {
			t.Errorf("Add: %v, want %q", err, c.want)
		}
		w.Abort()
		if _, err := os.Stat(bad); !os.IsNotExist(err) {
			t.Errorf("a refused row left %s", bad)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty.arrow")
	w, err = NewWriter(Columns{ImageBytes: true}, WriteOptions{Out: empty})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "no rows") {
		t.Errorf("Close with no rows: %v", err)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("no rows left %s", empty)
	}
}

// readRows reads a prepared stream back into rows (every column it has).
func readRows(t *testing.T, path string) ([]Row, *arrow.Schema) {
	t.Helper()
	r, err := stream.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []Row
	for r.Next() {
		rec := r.Batch()
		ids, _ := stream.Strings(rec, stream.ColImageID)
		splits, _ := stream.Strings(rec, stream.ColSplit)
		caps, err := stream.StringLists(rec, stream.ColCaptions)
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		var imgs [][]byte
		var urls *array.String
		if rec.Schema().HasField(stream.ColImagePath) {
			paths, _ = stream.Strings(rec, stream.ColImagePath)
		}
		if rec.Schema().HasField(stream.ColImageBytes) {
			imgs, _ = stream.Binaries(rec, stream.ColImageBytes)
		}
		if idx := rec.Schema().FieldIndices(ColURL); len(idx) == 1 {
			urls = rec.Column(idx[0]).(*array.String)
		}
		for i := range ids {
			g := Row{ImageID: ids[i], Split: splits[i], Captions: caps[i]}
			if paths != nil {
				g.ImagePath = paths[i]
			}
			if imgs != nil {
				g.ImageBytes = slices.Clone(imgs[i])
			}
			if urls != nil && urls.IsValid(i) {
				g.URL = urls.Value(i)
			}
			got = append(got, g)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return got, r.Schema()
}

func sameRow(a, b Row) bool {
	return a.ImageID == b.ImageID && a.Split == b.Split && a.ImagePath == b.ImagePath &&
		bytes.Equal(a.ImageBytes, b.ImageBytes) && a.URL == b.URL && slices.Equal(a.Captions, b.Captions)
}

// TestWriteEmbedImages: image_bytes holds each file's bytes exactly, beside
// image_path; a file that is no image, or missing, fails naming its row
// (of the whole dataset, in a --shard part) and leaves no output.
func TestWriteEmbedImages(t *testing.T) {
	dir := t.TempDir()
	var rows []Row
	var want [][]byte
	for i := range 200 { // four chunks of files read in parallel
		data := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{byte(i)}, 10*(i%9))...)
		path := filepath.Join(dir, fmt.Sprintf("%d.png", i))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, Row{ImageID: fmt.Sprint("id", i), Split: Train, ImagePath: path, Captions: []string{"c"}})
		want = append(want, data)
	}
	out := filepath.Join(dir, "out.arrow")
	if err := Write(rows, WriteOptions{Out: out, EmbedImages: true}); err != nil {
		t.Fatal(err)
	}
	r, err := stream.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got [][]byte
	var paths []string
	for r.Next() {
		b, err := stream.Binaries(r.Batch(), stream.ColImageBytes)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := stream.Strings(r.Batch(), stream.ColImagePath)
		for _, v := range b {
			got = append(got, bytes.Clone(v))
		}
		paths = append(paths, p...)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, want, bytes.Equal) || len(paths) != len(rows) || paths[108] != rows[108].ImagePath {
		t.Fatalf("image_bytes or image_path read back differ from the files (%d rows)", len(got))
	}
	if slices.ContainsFunc(rows, func(r Row) bool { return r.ImageBytes != nil }) {
		t.Error("Write kept image bytes in the caller's rows")
	}

	// The first bad row in order is named, of the whole dataset in a part,
	// and a part reads only its own files (rows 133-199: row 2 is not read).
	for _, c := range []struct {
		damage func()
		part   shard.Spec
		want   string
	}{
		{func() { os.WriteFile(rows[2].ImagePath, []byte("text"), 0o644); os.Remove(rows[190].ImagePath) }, shard.Spec{},
			"row 2 (id2): --embed-images: " + rows[2].ImagePath + ": not a JPEG, PNG, GIF, WebP or BMP image"},
		{func() {}, shard.Spec{K: 2, N: 3}, "row 190 (id190): --embed-images: open " + rows[190].ImagePath + ": no such file or directory"},
	} {
		c.damage()
		bad := filepath.Join(dir, "bad.arrow")
		if err := Write(rows, WriteOptions{Out: bad, EmbedImages: true, Part: c.part}); err == nil || err.Error() != c.want {
			t.Errorf("%v, want %s", err, c.want)
		}
		if _, err := os.Stat(bad); !os.IsNotExist(err) {
			t.Errorf("failed write left %s", bad)
		}
	}
}
