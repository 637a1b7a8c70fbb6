package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/clipline/clipline/internal/decode"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/shard"
	"github.com/clipline/clipline/internal/shard/shardtest"
	"github.com/clipline/clipline/internal/stream"
)

// rows reads the stream at path whole, get giving each batch's values.
func rows(t *testing.T, path string, get func(arrow.RecordBatch) ([][]byte, error)) [][]byte {
	t.Helper()
	r, err := stream.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out [][]byte
	for r.Next() {
		v, err := get(r.Batch())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range v {
			out = append(out, bytes.Clone(b))
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// imageBytes is the image_bytes column of the stream at path.
func imageBytes(t *testing.T, path string) [][]byte {
	return rows(t, path, func(rec arrow.RecordBatch) ([][]byte, error) { return stream.Binaries(rec, stream.ColImageBytes) })
}

// pixels is decode's pixels of the stream at path, at 24 px.
func pixels(t *testing.T, path string) [][]byte {
	t.Helper()
	in, err := stream.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	px := filepath.Join(t.TempDir(), "pix.arrows")
	err = decode.Run(in, decode.Options{Geometry: imageproc.Square(24), Out: px})
	in.Close()
	if err != nil {
		t.Fatal(err)
	}
	return rows(t, px, func(rec arrow.RecordBatch) ([][]byte, error) {
		p, err := stream.Pixels(rec)
		var out [][]byte
		for i := range p.Rows() {
			out = append(out, p.Row(i))
		}
		return out, err
	})
}

// TestEmbedImages: --embed-images adds image_bytes, each row's file byte
// for byte beside the same columns as without it; the stream decodes to
// the same pixels with the files gone; parts concatenate to the whole.
func TestEmbedImages(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "imgs")
	args := []string{"synthetic", "--domain", "scenes", "--seed", "4", "--images", "11", "--render-dir", imgs}
	plain, embedded := filepath.Join(dir, "plain.arrows"), filepath.Join(dir, "embedded.arrows")
	runOK(t, append(args, "--out", plain)...)
	runOK(t, append(args, "--embed-images", "--out", embedded)...)
	p, e := readStream(t, plain), readStream(t, embedded)
	if strings.Join(p.ids, ",") != strings.Join(e.ids, ",") || strings.Join(p.paths, ",") != strings.Join(e.paths, ",") || strings.Join(p.splits, ",") != strings.Join(e.splits, ",") {
		t.Fatal("--embed-images changed the other columns")
	}
	blobs := imageBytes(t, embedded)
	for i, path := range e.paths {
		want, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(blobs[i], want) {
			t.Fatalf("row %d: image_bytes differ from %s (%v)", i, path, err)
		}
	}
	shardtest.Check(t, embedded, func(t *testing.T, part shard.Spec, out string) {
		runOK(t, append(args, "--embed-images", "--shard", part.String(), "--out", out)...)
	})

	want := pixels(t, plain)
	if err := os.RemoveAll(imgs); err != nil {
		t.Fatal(err)
	}
	got := pixels(t, embedded)
	if len(got) != 11 {
		t.Fatalf("%d rows decoded", len(got))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("row %d: pixels from image_bytes differ from the files'", i)
		}
	}
}

// TestEmbedImagesJSONL: jsonl keeps its images too; a file that is no
// image fails naming the row and its image_id, with no output; synthetic's
// --jsonl (which writes no stream) refuses the flag.
func TestEmbedImagesJSONL(t *testing.T) {
	dir := t.TempDir()
	png := []byte("\x89PNG\r\n\x1a\nnot really")
	os.WriteFile(filepath.Join(dir, "a.png"), png, 0o644)
	os.WriteFile(filepath.Join(dir, "b.png"), []byte("text"), 0o644)
	jl := filepath.Join(dir, "pairs.jsonl")
	os.WriteFile(jl, []byte(`{"query":"a","positive":"a.png"}`+"\n"), 0o644)
	out := filepath.Join(dir, "out.arrow")
	runOK(t, "--embed-images", "jsonl", jl, "--out", out)
	if b := imageBytes(t, out); len(b) != 1 || !bytes.Equal(b[0], png) {
		t.Fatalf("image_bytes %q", b)
	}
	os.Remove(out)
	os.WriteFile(jl, []byte(`{"query":"a","positive":"a.png"}`+"\n"+`{"query":"b","positive":"b.png"}`+"\n"), 0o644)
	err := run([]string{"jsonl", jl, "--embed-images", "--out", out}, &bytes.Buffer{}, &bytes.Buffer{})
	if want := "row 1 (b.png): --embed-images: " + filepath.Join(dir, "b.png") + ": not a JPEG, PNG, GIF, WebP or BMP image"; err == nil || err.Error() != want {
		t.Errorf("%v, want %s", err, want)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("output written despite the error")
	}
	err = run([]string{"synthetic", "--images", "2", "--render-dir", dir, "--jsonl", dir, "--embed-images"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || err.Error() != "--jsonl "+dir+" writes JSONL files that name the images: drop --embed-images" {
		t.Errorf("--jsonl --embed-images: %v", err)
	}
}
