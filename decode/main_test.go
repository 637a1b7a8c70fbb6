package main

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"golang.org/x/image/bmp"

	"github.com/clipline/clipline/internal/cputime"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/stream/streamtest"
)

// picture is a w x h test image with gradients.
func picture(w, h int, seed uint8) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetNRGBA(x, y, color.NRGBA{uint8(x*5) + seed, uint8(y * 3), uint8(x*y) ^ seed, 255})
		}
	}
	return m
}

func writeImage(t testing.TB, path string, enc func(io.Writer, image.Image) error, m image.Image) string {
	t.Helper()
	var buf bytes.Buffer
	if err := enc(&buf, m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// fixture writes one image per format into dir and returns their paths.
func fixture(t *testing.T, dir string) []string {
	pal := image.NewPaletted(image.Rect(0, 0, 30, 20), color.Palette{color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i / 7 % 2)
	}
	grey := image.NewGray(image.Rect(0, 0, 25, 40))
	for i := range grey.Pix {
		grey.Pix[i] = uint8(i)
	}
	webpSrc, err := filepath.Abs("../internal/imageproc/testdata/gopher-doc.1bpp.lossless.webp")
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		writeImage(t, filepath.Join(dir, "a.png"), png.Encode, picture(50, 30, 1)),
		writeImage(t, filepath.Join(dir, "b.jpg"), func(w io.Writer, m image.Image) error { return jpeg.Encode(w, m, nil) }, picture(40, 64, 2)),
		writeImage(t, filepath.Join(dir, "c.gif"), func(w io.Writer, m image.Image) error { return gif.Encode(w, m, nil) }, pal),
		writeImage(t, filepath.Join(dir, "d.bmp"), bmp.Encode, picture(17, 33, 3)),
		writeImage(t, filepath.Join(dir, "e.png"), png.Encode, grey),
		webpSrc,
	}
}

// writeStream writes rows with image_id, image_path and a user column.
func writeStream(t testing.TB, path string, ids, paths []string) { writeRows(t, path, ids, paths, nil) }

// writeRows writes rows with image_id, image_bytes (unless data is nil),
// image_path and a user column.
func writeRows(t testing.TB, path string, ids, paths []string, data [][]byte) {
	t.Helper()
	fields := []arrow.Field{stream.ImageIDField(), stream.ImagePathField(), {Name: "my_note", Type: arrow.BinaryTypes.String, Nullable: true}}
	notes := make([]string, len(ids))
	for i := range notes {
		notes[i] = "note " + ids[i]
	}
	cols := []arrow.Array{stream.NewStrings(ids), stream.NewStrings(paths), stream.NewStrings(notes)}
	if data != nil {
		fields, cols = append(fields, stream.ImageBytesField()), append(cols, stream.NewBinaries(data))
	}
	schema := arrow.NewSchema(fields, nil)
	rec := array.NewRecordBatch(schema, cols, int64(len(ids)))
	defer rec.Release()
	streamtest.WriteFile(t, path, schema, stream.Options{BatchRows: 4}, rec)
}

type result struct {
	ids, notes []string
	pixels     stream.PixelRows
	size       string
}

func readStream(t *testing.T, path string) result {
	t.Helper()
	in, err := stream.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var r result
	r.size, _ = in.Meta(stream.MetaImageSize)
	for in.Next() {
		rec := in.Batch()
		ids, err := stream.Strings(rec, stream.ColImageID)
		if err != nil {
			t.Fatal(err)
		}
		notes, err := stream.Strings(rec, "my_note")
		if err != nil {
			t.Fatal(err)
		}
		px, err := stream.Pixels(rec)
		if err != nil {
			t.Fatal(err)
		}
		r.ids = append(r.ids, ids...)
		r.notes = append(r.notes, notes...)
		r.pixels.Width = px.Width
		r.pixels.Values = append(r.pixels.Values, px.Values...)
	}
	if err := in.Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

func expected(t *testing.T, path string, n int) []byte {
	t.Helper()
	p, err := imageproc.NewProcessor(imageproc.Square(n))
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.File(nil, path)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDecodeAllFormats(t *testing.T) {
	dir := t.TempDir()
	paths := fixture(t, dir)
	var ids []string
	for i := range paths {
		ids = append(ids, string(rune('a'+i)))
	}
	in, out := filepath.Join(dir, "in.arrows"), filepath.Join(dir, "out.arrows")
	writeStream(t, in, ids, paths)
	var stderr bytes.Buffer
	if err := run([]string{"--size", "16", "--in", in, "--out", out, "--workers", "3"}, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	t.Log(strings.TrimSpace(stderr.String()))
	r := readStream(t, out)
	if r.size != "16" || r.pixels.Width != 16*16*3 {
		t.Fatalf("image_size %q, width %d", r.size, r.pixels.Width)
	}
	if strings.Join(r.ids, ",") != strings.Join(ids, ",") {
		t.Fatalf("row order %v, want %v", r.ids, ids)
	}
	for i, p := range paths {
		if r.notes[i] != "note "+ids[i] {
			t.Fatalf("user column not passed through: %q", r.notes[i])
		}
		if !bytes.Equal(r.pixels.Row(i), expected(t, p, 16)) {
			t.Fatalf("row %d (%s): pixels differ from imageproc's", i, filepath.Base(p))
		}
	}
}

// Without --out the stream goes to the stdout run was given.
func TestDecodeToStdout(t *testing.T) {
	dir := t.TempDir()
	paths := fixture(t, dir)[:2]
	in := filepath.Join(dir, "in.arrows")
	writeStream(t, in, []string{"a", "b"}, paths)
	var stdout bytes.Buffer
	if err := run([]string{"--size", "8", "--in", in}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	r, err := stream.NewReader(&stdout, "stdout")
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for r.Next() {
		rows += int(r.Batch().NumRows())
	}
	if r.Err() != nil || rows != 2 {
		t.Fatalf("%d rows on stdout, %v", rows, r.Err())
	}
}

func TestDecodeCorrupt(t *testing.T) {
	dir := t.TempDir()
	paths := fixture(t, dir)[:3]
	data, err := os.ReadFile(paths[1])
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "cut.jpg")
	if err := os.WriteFile(bad, data[:len(data)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "nope.png")
	rows := []string{paths[0], bad, paths[2], missing, paths[1]}
	ids := []string{"id0", "id1", "id2", "id3", "id4"}
	in, out := filepath.Join(dir, "in.arrows"), filepath.Join(dir, "out.arrows")
	writeStream(t, in, ids, rows)

	err = run([]string{"--size", "8", "--in", in, "--out", out}, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("corrupt JPEG accepted")
	}
	msg := err.Error()
	t.Log("decode: " + msg)
	for _, want := range []string{"row 1", "image_id id1", bad} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("failed run left an output file (stat: %v)", err)
	}

	var stderr bytes.Buffer
	if err := run([]string{"--size", "8", "--skip-bad", "--in", in, "--out", out}, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	log := stderr.String()
	t.Log(strings.TrimSpace(log))
	if !strings.Contains(log, "2 rows dropped") || !strings.Contains(log, bad) || !strings.Contains(log, missing) {
		t.Fatalf("stderr does not count and name the skipped images:\n%s", log)
	}
	r := readStream(t, out)
	if strings.Join(r.ids, ",") != "id0,id2,id4" {
		t.Fatalf("kept rows %v", r.ids)
	}
	for i, p := range []string{paths[0], paths[2], paths[1]} {
		if !bytes.Equal(r.pixels.Row(i), expected(t, p, 8)) {
			t.Fatalf("kept row %d has wrong pixels", i)
		}
	}
}

func TestDecodeModelAndImageRoot(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	if err := os.Mkdir(model, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := `{"size": {"shortest_edge": 12}, "crop_size": {"height": 12, "width": 12}, "resample": 3}`
	if err := os.WriteFile(filepath.Join(model, "preprocessor_config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	abs := fixture(t, dir)[0]
	in, out := filepath.Join(dir, "in.arrows"), filepath.Join(dir, "out.arrows")
	writeStream(t, in, []string{"rel", "abs"}, []string{"a.png", abs})
	var stderr bytes.Buffer
	if err := run([]string{"--model", model, "--image-root", dir, "--in", in, "--out", out}, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	r := readStream(t, out)
	if r.size != "12" || len(r.ids) != 2 {
		t.Fatalf("size %q, rows %d", r.size, len(r.ids))
	}
	for i := range 2 {
		if !bytes.Equal(r.pixels.Row(i), expected(t, abs, 12)) {
			t.Fatalf("row %d wrong", i)
		}
	}

	// Without --image-root the relative path is relative to the working
	// directory, where a.png does not exist.
	err := run([]string{"--model", model, "--in", in, "--out", out}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "a.png") {
		t.Fatalf("relative path without --image-root: %v", err)
	}
}

func TestDecodeArgumentsAndInput(t *testing.T) {
	dir := t.TempDir()
	// No geometry.
	if err := run([]string{"--in", "x"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--size") {
		t.Fatalf("missing geometry: %v", err)
	}
	// A stream without image_path or image_bytes.
	in := filepath.Join(dir, "noimg.arrows")
	streamtest.WriteFile(t, in, arrow.NewSchema([]arrow.Field{stream.ImageIDField()}, nil), stream.Options{})
	err := run([]string{"--size", "8", "--in", in, "--out", filepath.Join(dir, "o.arrows")}, io.Discard, io.Discard)
	if err == nil || err.Error() != in+": neither image_bytes nor image_path to decode; prepare writes them" {
		t.Fatalf("missing image_path: %v", err)
	}
	// Empty input is an error from the stream reader.
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"--size", "8", "--in", empty, "--out", filepath.Join(dir, "o.arrows")}, io.Discard, io.Discard); err == nil {
		t.Fatal("empty input accepted")
	}
}

// readFiles is the files' contents.
func readFiles(t testing.TB, files ...string) [][]byte {
	t.Helper()
	var data [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b)
	}
	return data
}

// TestDecodeImageBytes: image_bytes is decoded in place of image_path (it
// wins when a row has both: here the paths name other, or no, files) to the
// pixels the same files give through image_path; a corrupt image names its
// row, image_id and column, and --skip-bad drops it.
func TestDecodeImageBytes(t *testing.T) {
	dir := t.TempDir()
	files := fixture(t, dir)
	var ids, decoys []string
	for i := range files {
		ids = append(ids, "id"+strconv.Itoa(i))
		decoys = append(decoys, files[(i+1)%len(files)])
	}
	decoys[2] = filepath.Join(dir, "missing.png")
	in, out := filepath.Join(dir, "in.arrows"), filepath.Join(dir, "out.arrows")
	writeRows(t, in, ids, decoys, readFiles(t, files...))
	if err := run([]string{"--size", "16", "--in", in, "--out", out, "--workers", "2"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	got := readStream(t, out)
	byPath := filepath.Join(dir, "bypath.arrows")
	writeStream(t, byPath, ids, files)
	if err := run([]string{"--size", "16", "--in", byPath, "--out", out}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := readStream(t, out)
	if strings.Join(got.ids, ",") != strings.Join(ids, ",") || got.notes[5] != "note id5" || got.size != "16" {
		t.Fatalf("rows %v, notes %v, size %q", got.ids, got.notes, got.size)
	}
	if !bytes.Equal(got.pixels.Values, want.pixels.Values) {
		t.Fatal("pixels from image_bytes differ from the same files' through image_path")
	}

	// One image cut short (and no files under image_path).
	cut := filepath.Join(dir, "cut.jpg")
	data, _ := os.ReadFile(files[1])
	if err := os.WriteFile(cut, data[:len(data)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	writeRows(t, in, []string{"a", "b", "c"}, []string{"", "", ""}, readFiles(t, files[0], cut, files[3]))
	err := run([]string{"--size", "8", "--in", in, "--out", out}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "row 1 (image_id b): image_bytes: ") {
		t.Fatalf("corrupt image_bytes: %v", err)
	}
	var stderr bytes.Buffer
	if err := run([]string{"--size", "8", "--skip-bad", "--in", in, "--out", out}, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "skipping row 1 (image_id b): image_bytes: ") || !strings.Contains(stderr.String(), "1 rows dropped") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	kept := readStream(t, out)
	if strings.Join(kept.ids, ",") != "a,c" || !bytes.Equal(kept.pixels.Row(1), expected(t, files[3], 8)) {
		t.Errorf("kept %v", kept.ids)
	}
}

// BenchmarkStage runs the whole stage (read stream, decode on all cores,
// write stream) over 512 rows of a 500x375 JPEG at 224; images/s is the
// stage's throughput, cpu-ms/image its processor time per image.
func BenchmarkStage(b *testing.B) { benchStage(b, false) }

// BenchmarkStageImageBytes is BenchmarkStage with the JPEG in image_bytes.
func BenchmarkStageImageBytes(b *testing.B) { benchStage(b, true) }

func benchStage(b *testing.B, inStream bool) {
	dir := b.TempDir()
	src := filepath.Join(dir, "landscape.jpg")
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, picture(500, 375, 7), &jpeg.Options{Quality: 90}); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(src, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	const rows = 512
	ids, paths := make([]string, rows), make([]string, rows)
	var data [][]byte
	for i := range ids {
		ids[i], paths[i] = strconv.Itoa(i), src
		if inStream {
			data = append(data, buf.Bytes())
		}
	}
	in, out := filepath.Join(dir, "in.arrows"), filepath.Join(dir, "out.arrows")
	writeRows(b, in, ids, paths, data)
	cpu0 := cputime.Process()
	b.ResetTimer()
	for b.Loop() {
		if err := run([]string{"--size", "224", "--in", in, "--out", out}, io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "images/s")
	if cpu0 > 0 {
		b.ReportMetric((cputime.Process()-cpu0).Seconds()*1000/float64(rows*b.N), "cpu-ms/image")
	}
}
