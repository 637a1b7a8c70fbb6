package stream

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/clipline/clipline/internal/cli"
)

// sample builds n rows with every contract column plus a user column.
type sample struct {
	ids, splits, paths []string
	imgs               [][]byte
	caps               [][]string
	tok                Tokens
	pix                PixelRows
	emb                Vectors
	cemb               VectorLists
	extra              []string
}

const (
	tCtx  = 5
	tSide = 2
	tDim  = 3
)

func makeSample(n int) sample {
	s := sample{tok: Tokens{Width: tCtx, Offsets: []int32{0}}, pix: PixelRows{Width: tSide * tSide * 3},
		emb: Vectors{Width: tDim}, cemb: VectorLists{Width: tDim, Offsets: []int32{0}}}
	for i := range n {
		s.ids = append(s.ids, fmt.Sprintf("img%03d", i))
		s.splits = append(s.splits, []string{"train", "val", "test"}[i%3])
		s.paths = append(s.paths, fmt.Sprintf("images/%d.jpg", i))
		img := make([]byte, (i*37)%50) // lengths 0..49, every byte value across rows
		for k := range img {
			img[k] = byte(i*50 + k)
		}
		s.imgs = append(s.imgs, img)
		s.extra = append(s.extra, fmt.Sprintf("user-%d", i))
		var c []string
		for j := range i % 4 { // rows with 0..3 captions, including none
			c = append(c, fmt.Sprintf("caption %d of image %d ✓", j, i))
			for k := range tCtx {
				s.tok.Values = append(s.tok.Values, int32(i*100+j*10+k))
			}
			for k := range tDim {
				s.cemb.Values = append(s.cemb.Values, float32(i)+float32(j)/10+float32(k)/100)
			}
		}
		s.caps = append(s.caps, c)
		s.tok.Offsets = append(s.tok.Offsets, int32(len(s.tok.Values)/tCtx))
		s.cemb.Offsets = append(s.cemb.Offsets, int32(len(s.cemb.Values)/tDim))
		for k := range s.pix.Width {
			s.pix.Values = append(s.pix.Values, uint8(i*7+k))
		}
		for k := range tDim {
			s.emb.Values = append(s.emb.Values, float32(i)*0.5-float32(k))
		}
	}
	return s
}

func (s sample) fields() []arrow.Field {
	return []arrow.Field{ImageIDField(), SplitField(), ImagePathField(), ImageBytesField(), CaptionsField(),
		CaptionTokensField(tCtx), PixelsField(tSide), ImageEmbeddingField(tDim), CaptionEmbeddingsField(tDim),
		{Name: "user_note", Type: arrow.BinaryTypes.String}}
}

func (s sample) record(t testing.TB) arrow.RecordBatch {
	cols := []arrow.Array{NewStrings(s.ids), NewStrings(s.splits), NewStrings(s.paths), NewBinaries(s.imgs), NewStringLists(s.caps),
		NewCaptionTokens(s.tok), NewPixels(s.pix), NewImageEmbeddings(s.emb), NewCaptionEmbeddings(s.cemb), NewStrings(s.extra)}
	schema := arrow.NewSchema(s.fields(), nil)
	schema = WithMeta(schema, MetaImageSize, fmt.Sprint(tSide))
	schema = WithProvenance(schema, "prepare", []string{"synthetic", "--seed", "1"})
	return array.NewRecordBatch(schema, cols, int64(len(s.ids)))
}

// readAll concatenates every batch's columns in flat form.
func readAll(t *testing.T, r *Reader) (sample, []int64) {
	t.Helper()
	got := sample{tok: Tokens{Offsets: []int32{0}}, cemb: VectorLists{Offsets: []int32{0}}}
	var sizes []int64
	for r.Next() {
		rec := r.Batch()
		sizes = append(sizes, rec.NumRows())
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		ids, err := Strings(rec, ColImageID)
		must(err)
		splits, err := Strings(rec, ColSplit)
		must(err)
		paths, err := Strings(rec, ColImagePath)
		must(err)
		imgs, err := Binaries(rec, ColImageBytes)
		must(err)
		extra, err := Strings(rec, "user_note")
		must(err)
		caps, err := StringLists(rec, ColCaptions)
		must(err)
		tok, err := CaptionTokens(rec)
		must(err)
		pix, err := Pixels(rec)
		must(err)
		emb, err := ImageEmbeddings(rec)
		must(err)
		cemb, err := CaptionEmbeddings(rec)
		must(err)
		got.ids = append(got.ids, ids...)
		got.splits = append(got.splits, splits...)
		got.paths = append(got.paths, paths...)
		for _, b := range imgs {
			got.imgs = append(got.imgs, bytes.Clone(b)) // the batch is released by Next
		}
		got.extra = append(got.extra, extra...)
		got.caps = append(got.caps, caps...)
		appendLists(&got.tok, tok)
		appendLists(&got.cemb, cemb)
		got.pix.Width, got.emb.Width = pix.Width, emb.Width
		got.pix.Values = append(got.pix.Values, pix.Values...)
		got.emb.Values = append(got.emb.Values, emb.Values...)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return got, sizes
}

func appendLists[T int32 | float32](dst *Lists[T], src Lists[T]) {
	base := dst.Offsets[len(dst.Offsets)-1]
	dst.Width = src.Width
	dst.Values = append(dst.Values, src.Values...)
	for _, o := range src.Offsets[1:] {
		dst.Offsets = append(dst.Offsets, base+o)
	}
}

func checkSame(t *testing.T, got, want sample) {
	t.Helper()
	eq := func(name string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s differs after round trip", name)
		}
	}
	eq("image_id", slices.Equal(got.ids, want.ids))
	eq("split", slices.Equal(got.splits, want.splits))
	eq("image_path", slices.Equal(got.paths, want.paths))
	eq("image_bytes", slices.EqualFunc(got.imgs, want.imgs, bytes.Equal))
	eq("user_note", slices.Equal(got.extra, want.extra))
	eq("captions", len(got.caps) == len(want.caps) && slices.EqualFunc(got.caps, want.caps, func(a, b []string) bool { return slices.Equal(a, b) }))
	eq("caption_tokens", got.tok.Width == want.tok.Width && slices.Equal(got.tok.Values, want.tok.Values) && slices.Equal(got.tok.Offsets, want.tok.Offsets))
	eq("caption_embeddings", got.cemb.Width == want.cemb.Width && slices.Equal(got.cemb.Values, want.cemb.Values) && slices.Equal(got.cemb.Offsets, want.cemb.Offsets))
	eq("pixels", got.pix.Width == want.pix.Width && bytes.Equal(got.pix.Values, want.pix.Values))
	eq("image_embedding", got.emb.Width == want.emb.Width && slices.Equal(got.emb.Values, want.emb.Values))
}

func TestRoundTripAllColumns(t *testing.T) {
	for _, comp := range []string{"", "zstd", "lz4"} {
		t.Run("compress="+comp, func(t *testing.T) {
			want := makeSample(23)
			rec := want.record(t)
			defer rec.Release()
			path := filepath.Join(t.TempDir(), "out.arrow")
			w, err := Create(path, rec.Schema(), Options{Compress: comp, BatchRows: 5})
			if err != nil {
				t.Fatal(err)
			}
			// Write in uneven pieces so re-batching joins and splits slices.
			for _, cut := range [][2]int64{{0, 3}, {3, 4}, {4, 17}, {17, 23}} {
				sl := rec.NewSlice(cut[0], cut[1])
				if err := w.Write(sl); err != nil {
					t.Fatal(err)
				}
				sl.Release()
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if v, _ := r.Meta(MetaImageSize); v != "2" {
				t.Errorf("image size metadata %q, want 2", v)
			}
			got, sizes := readAll(t, r)
			checkSame(t, got, want)
			if !slices.Equal(sizes, []int64{5, 5, 5, 5, 3}) {
				t.Errorf("batch sizes %v, want 5,5,5,5,3", sizes)
			}
		})
	}
}

func TestCompressedIsSmaller(t *testing.T) {
	s := makeSample(200)
	rec := s.record(t)
	defer rec.Release()
	size := func(comp string) int { return len(encode(t, rec, Options{Compress: comp})) }
	if plain, z := size(""), size("zstd"); z >= plain {
		t.Errorf("zstd stream %d bytes, uncompressed %d", z, plain)
	}
	if _, err := NewWriter(&bytes.Buffer{}, "buf", rec.Schema(), Options{Compress: "gzip"}); err == nil {
		t.Error("unknown compression accepted")
	}
}

func TestBatchBytesBound(t *testing.T) {
	s := makeSample(40)
	rec := s.record(t)
	defer rec.Release()
	per := estimateBytes(rec) / rec.NumRows()
	data := encode(t, rec, Options{BatchRows: 1000, BatchBytes: per * 8})
	r, err := NewReader(bytes.NewReader(data), "buf")
	if err != nil {
		t.Fatal(err)
	}
	_, sizes := readAll(t, r)
	if !slices.Equal(sizes, []int64{8, 8, 8, 8, 8}) {
		t.Errorf("batch sizes %v, want five of 8", sizes)
	}
}

func encode(t *testing.T, rec arrow.RecordBatch, opts Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, "buf", rec.Schema(), opts)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, rec)
	return buf.Bytes()
}

// writeAll writes rec to w and closes it.
func writeAll(t testing.TB, w *Writer, rec arrow.RecordBatch) {
	t.Helper()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func readErr(data []byte) error {
	r, err := NewReader(bytes.NewReader(data), "in.arrow")
	if err != nil {
		return err
	}
	defer r.Close()
	for r.Next() {
	}
	return r.Err()
}

func TestEmptyAndForeignInput(t *testing.T) {
	err := readErr(nil)
	if err == nil || err.Error() != "in.arrow: empty input, expected an Arrow IPC stream or file" {
		t.Errorf("empty input: %v", err)
	}
	if err := readErr([]byte(`{"query": "a dog"}` + "\n")); err == nil || !strings.Contains(err.Error(), "not an Arrow IPC stream") {
		t.Errorf("JSON input: %v", err)
	}
	// The IPC file's magic followed by no Arrow stream.
	if err := readErr([]byte("ARROW1\x00\x00rest")); err == nil || !strings.HasPrefix(err.Error(), "in.arrow: reading schema: ") {
		t.Errorf("Arrow file magic and garbage: %v", err)
	}
}

func TestTruncatedStream(t *testing.T) {
	s := makeSample(12)
	rec := s.record(t)
	defer rec.Release()
	for _, comp := range []string{"", "zstd"} {
		data := encode(t, rec, Options{Compress: comp, BatchRows: 4})
		if err := readErr(data); err != nil {
			t.Fatalf("complete stream: %v", err)
		}
		// Every cut point short of the full stream must be an error: mid
		// header, mid metadata, mid body, at a message boundary, mid marker.
		for cut := 1; cut < len(data); cut++ {
			err := readErr(data[:cut])
			if err == nil {
				t.Fatalf("compress=%q: stream cut at %d of %d bytes read without error", comp, cut, len(data))
			}
			if !strings.HasPrefix(err.Error(), "in.arrow: ") {
				t.Fatalf("error does not name the input: %v", err)
			}
		}
		// Exactly the end-of-stream marker missing: the stdout failure mode.
		err := readErr(data[:len(data)-8])
		if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "batch 4") {
			t.Errorf("missing end marker: %v", err)
		}
	}
}

func TestAtomicFileWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.arrow")
	rec := makeSample(4).record(t)
	defer rec.Release()
	w, err := Create(path, rec.Schema(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("output exists before Close: %v", err)
	}
	w.Abort()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Abort left %v", ents)
	}
	// A previous complete file stays untouched by an aborted rewrite.
	w, _ = Create(path, rec.Schema(), Options{})
	w.Write(rec)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.Abort() // no-op after Close
	before, _ := os.ReadFile(path)
	w, _ = Create(path, rec.Schema(), Options{})
	w.Abort()
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("aborted rewrite changed the existing file")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %v, want only out.arrow", ents)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
}

// "-" writes to Options.Stdout, the stage's stdout, and never to the
// process's own behind the stage's back.
func TestCreateStdout(t *testing.T) {
	rec := makeSample(3).record(t)
	defer rec.Release()
	if _, err := Create("-", rec.Schema(), Options{}); err == nil {
		t.Error(`Create("-") without Options.Stdout succeeded`)
	}
	var out bytes.Buffer
	w, err := Create("-", rec.Schema(), Options{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, rec)
	if !bytes.Equal(out.Bytes(), encode(t, rec, Options{})) {
		t.Errorf("stdout holds %d bytes, not the stream", out.Len())
	}
	// A terminal is refused, whichever stage writes; /dev/null is not one.
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	w, err = Create("-", rec.Schema(), Options{Stdout: devNull})
	if err != nil {
		t.Fatalf("stdout /dev/null: %v", err)
	}
	writeAll(t, w, rec)
	if pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0); err == nil {
		defer pty.Close()
		if _, err := Create("-", rec.Schema(), Options{Stdout: pty}); err == nil || !strings.Contains(err.Error(), "terminal") {
			t.Errorf("stdout a terminal: %v, want a refusal", err)
		}
	}
}

// TestOpenStdin: Open("-") refuses a terminal stdin (the process would wait
// for a stream nobody types) and reads /dev/null as an empty input.
func TestOpenStdin(t *testing.T) {
	old := os.Stdin
	defer func() { os.Stdin = old }()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	os.Stdin = devNull
	if _, err := Open("-"); err == nil || !strings.Contains(err.Error(), "stdin: empty input") {
		t.Errorf("stdin /dev/null: %v, want an empty input", err)
	}
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer pty.Close()
	os.Stdin = pty
	for _, path := range []string{"-", ""} {
		if _, err := Open(path); !errors.Is(err, cli.ErrTerminalStdin) || !strings.Contains(err.Error(), "pass --in FILE or pipe one") {
			t.Errorf("Open(%q) on a terminal: %v", path, err)
		}
	}
}

func TestZeroRowStream(t *testing.T) {
	rec := makeSample(0).record(t)
	defer rec.Release()
	data := encode(t, rec, Options{})
	r, err := NewReader(bytes.NewReader(data), "in")
	if err != nil {
		t.Fatal(err)
	}
	if r.Next() || r.Err() != nil {
		t.Errorf("zero-row stream: next=%v err=%v", true, r.Err())
	}
	if !r.Schema().HasField(ColPixels) {
		t.Error("schema lost")
	}
}

func TestMetadataAndProvenance(t *testing.T) {
	s := arrow.NewSchema([]arrow.Field{ImageIDField()}, nil)
	s = WithMeta(s, MetaContextLength, "77")
	s = WithMeta(s, MetaContextLength, "64")
	s = WithMeta(s, "user.key", "x")
	s = WithProvenance(s, "prepare", []string{"jsonl", "a b.jsonl"})
	s = WithProvenance(s, "tokenize", nil)
	if v, ok, err := MetaInt(s, MetaContextLength); v != 64 || !ok || err != nil {
		t.Errorf("context length %d %v %v", v, ok, err)
	}
	if _, ok, _ := MetaInt(s, MetaImageSize); ok {
		t.Error("absent key found")
	}
	if v, _ := Meta(s, "user.key"); v != "x" {
		t.Errorf("user key %q", v)
	}
	steps, err := Provenance(s)
	if err != nil || len(steps) != 2 || steps[0].Stage != "prepare" || !slices.Equal(steps[0].Args, []string{"jsonl", "a b.jsonl"}) || steps[1].Stage != "tokenize" || steps[1].Version == "" {
		t.Errorf("provenance %+v %v", steps, err)
	}
	// Metadata survives a write and read.
	rec := array.NewRecordBatch(s, []arrow.Array{NewStrings([]string{"a"})}, 1)
	r, err := NewReader(bytes.NewReader(encode(t, rec, Options{Compress: "zstd"})), "in")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := Provenance(r.Schema()); len(got) != 2 || got[1].Stage != "tokenize" {
		t.Errorf("provenance after round trip: %+v", got)
	}
}

func TestRequireColumns(t *testing.T) {
	s := arrow.NewSchema([]arrow.Field{ImageIDField(), {Name: ColPixels, Type: arrow.BinaryTypes.String}}, nil)
	for col, want := range map[string]string{
		ColCaptionTokens:     "column caption_tokens missing; run tokenize first",
		ColImageEmbedding:    "column image_embedding missing; run embed first",
		ColPixels:            "column pixels has type utf8, want fixed_size_list<uint8>[size*size*3]",
		"mine":               "column mine missing",
		ColCaptionEmbeddings: "column caption_embeddings missing; run embed first",
	} {
		if err := RequireColumns(s, ColImageID, col); err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %q", col, err, want)
		}
	}
	if err := RequireColumns(s, ColImageID); err != nil {
		t.Error(err)
	}
	rec := array.NewRecordBatch(s, []arrow.Array{NewStrings([]string{"a"}), NewStrings([]string{"b"})}, 1)
	if _, err := Pixels(rec); err == nil {
		t.Error("Pixels read a utf8 column")
	}
}

func TestSetColumnsPassThrough(t *testing.T) {
	s := makeSample(6)
	rec := s.record(t)
	defer rec.Release()
	// Replace pixels with a 1x1 image and append a new column.
	newPix := NewPixels(PixelRows{Width: 3, Values: make([]byte, 18)})
	note := arrow.Field{Name: "note2", Type: arrow.BinaryTypes.String}
	out, err := SetColumns(rec, []arrow.Field{PixelsField(1), note}, []arrow.Array{newPix, NewStrings(strings.Fields("a b c d e f"))})
	if err != nil {
		t.Fatal(err)
	}
	pixCol := rec.Schema().FieldIndices(ColPixels)[0]
	if out.NumCols() != rec.NumCols()+1 || out.ColumnName(pixCol) != ColPixels || out.ColumnName(int(out.NumCols())-1) != "note2" {
		t.Fatalf("columns %v", out.Schema())
	}
	for i := range int(rec.NumCols()) {
		if i != pixCol && out.Column(i) != rec.Column(i) {
			t.Errorf("column %s not passed through", rec.ColumnName(i))
		}
	}
	if v, _ := Meta(out.Schema(), MetaImageSize); v != "2" {
		t.Error("metadata dropped")
	}
	if _, err := SetColumns(rec, []arrow.Field{note}, []arrow.Array{NewStrings([]string{"x"})}); err == nil {
		t.Error("short column accepted")
	}
}

func TestTransformFiltersAndPassesThrough(t *testing.T) {
	s := makeSample(50)
	rec := s.record(t)
	defer rec.Release()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.arrow")
	out := filepath.Join(dir, "out.arrow")
	os.WriteFile(in, encode(t, rec, Options{BatchRows: 7}), 0o644)
	r, err := Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	lenField := arrow.Field{Name: "caption_count", Type: arrow.BinaryTypes.String}
	st, err := Transform(r, TransformSpec{
		Stage: "count", Args: []string{"--x"}, Out: out, Options: Options{BatchRows: 4, Compress: "zstd"},
		Fields: []arrow.Field{lenField}, Meta: map[string]string{"count.version": "1"},
		Fn: func(b arrow.RecordBatch, first int64) ([]arrow.Array, []bool, error) {
			caps, err := StringLists(b, ColCaptions)
			if err != nil {
				return nil, nil, err
			}
			var vals []string
			var keep []bool
			for i, c := range caps {
				vals = append(vals, fmt.Sprint(len(c)))
				keep = append(keep, (first+int64(i))%5 != 0) // drop every fifth row
			}
			return []arrow.Array{NewStrings(vals)}, keep, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.RowsIn != 50 || st.RowsOut != 40 || st.Dropped != 10 {
		t.Errorf("stats %+v", st)
	}
	r2, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	steps, _ := Provenance(r2.Schema())
	if len(steps) != 2 || steps[1].Stage != "count" {
		t.Errorf("provenance %+v", steps)
	}
	if v, _ := r2.Meta("count.version"); v != "1" {
		t.Error("meta not added")
	}
	var ids, counts []string
	for r2.Next() {
		a, _ := Strings(r2.Batch(), ColImageID)
		c, _ := Strings(r2.Batch(), "caption_count")
		ids, counts = append(ids, a...), append(counts, c...)
		if r2.Batch().NumRows() > 4 {
			t.Errorf("batch of %d rows", r2.Batch().NumRows())
		}
	}
	if r2.Err() != nil {
		t.Fatal(r2.Err())
	}
	var wantIDs, wantCounts []string
	for i := range 50 {
		if i%5 != 0 {
			wantIDs = append(wantIDs, s.ids[i])
			wantCounts = append(wantCounts, fmt.Sprint(len(s.caps[i])))
		}
	}
	if !slices.Equal(ids, wantIDs) || !slices.Equal(counts, wantCounts) {
		t.Errorf("ids %v\ncounts %v", ids, counts)
	}
}

func TestTransformErrorLeavesNoOutput(t *testing.T) {
	rec := makeSample(20).record(t)
	defer rec.Release()
	dir := t.TempDir()
	out := filepath.Join(dir, "out.arrow")
	r, _ := NewReader(bytes.NewReader(encode(t, rec, Options{BatchRows: 5})), "in.arrow")
	_, err := Transform(r, TransformSpec{Stage: "fail", Out: out,
		Fn: func(b arrow.RecordBatch, first int64) ([]arrow.Array, []bool, error) {
			if first >= 10 {
				return nil, nil, fmt.Errorf("row %d: cannot decode", first+2)
			}
			return nil, nil, nil
		}})
	if err == nil || err.Error() != "in.arrow: row 12: cannot decode" {
		t.Errorf("error %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed transform left %v", ents)
	}
}

// Streams written back by other tools may use large or view types for the
// string and list columns; readers accept them.
func TestReadsLargeAndViewTypes(t *testing.T) {
	mem := memory.DefaultAllocator
	idb := array.NewStringViewBuilder(mem)
	idb.AppendValues([]string{"a", "b"}, nil)
	capb := array.NewLargeListBuilder(mem, arrow.BinaryTypes.LargeString)
	cv := capb.ValueBuilder().(*array.LargeStringBuilder)
	capb.Append(true)
	cv.AppendValues([]string{"x", "y"}, nil)
	capb.Append(true)
	tokType := arrow.FixedSizeListOf(2, arrow.PrimitiveTypes.Int32)
	tokb := array.NewLargeListBuilderWithField(mem, arrow.Field{Name: "item", Type: tokType, Nullable: true})
	fb := tokb.ValueBuilder().(*array.FixedSizeListBuilder)
	ib := fb.ValueBuilder().(*array.Int32Builder)
	tokb.Append(true)
	fb.AppendValues([]bool{true, true})
	ib.AppendValues([]int32{1, 2, 3, 4}, nil)
	tokb.Append(true)
	cols := []arrow.Array{idb.NewArray(), capb.NewArray(), tokb.NewArray()}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: ColImageID, Type: cols[0].DataType()}, {Name: ColCaptions, Type: cols[1].DataType()},
		{Name: ColCaptionTokens, Type: cols[2].DataType()}}, nil)
	rec := array.NewRecordBatch(schema, cols, 2)
	if err := RequireColumns(schema, ColImageID, ColCaptions, ColCaptionTokens); err != nil {
		t.Fatal(err)
	}
	ids, err := Strings(rec, ColImageID)
	if err != nil || !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("ids %v %v", ids, err)
	}
	caps, err := StringLists(rec, ColCaptions)
	if err != nil || len(caps) != 2 || !slices.Equal(caps[0], []string{"x", "y"}) || len(caps[1]) != 0 {
		t.Errorf("captions %v %v", caps, err)
	}
	tok, err := CaptionTokens(rec)
	if err != nil || tok.Width != 2 || !slices.Equal(tok.Values, []int32{1, 2, 3, 4}) || !slices.Equal(tok.Offsets, []int32{0, 2, 2}) {
		t.Errorf("tokens %+v %v", tok, err)
	}
}

// TestFlatStringLists: a sliced batch's captions in flat form, offsets from
// 0, and nulls refused with the row named.
func TestFlatStringLists(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{CaptionsField()}, nil)
	caps := NewStringLists([][]string{{"a"}, {"b", "c"}, {}, {"d"}})
	rec := array.NewRecordBatch(schema, []arrow.Array{caps}, 4)
	caps.Release()
	part := rec.NewSlice(1, 4)
	rec.Release()
	vals, offs, err := FlatStringLists(part, ColCaptions)
	part.Release()
	if err != nil || !slices.Equal(vals, []string{"b", "c", "d"}) || !slices.Equal(offs, []int32{0, 2, 2, 3}) {
		t.Fatalf("flat %q %v %v", vals, offs, err)
	}

	b := array.NewListBuilder(memory.DefaultAllocator, arrow.BinaryTypes.String)
	vb := b.ValueBuilder().(*array.StringBuilder)
	b.Append(true)
	vb.Append("x")
	b.Append(true)
	vb.AppendNull()
	b.AppendNull()
	nulls := b.NewArray()
	b.Release()
	for _, c := range []struct {
		rows int64
		want string
	}{{2, "column captions: row 1: caption 0 is null"}, {3, "column captions: row 2 is null"}} {
		col := array.NewSlice(nulls, 0, c.rows)
		rec := array.NewRecordBatch(schema, []arrow.Array{col}, c.rows)
		if _, _, err := FlatStringLists(rec, ColCaptions); err == nil || err.Error() != c.want {
			t.Errorf("%d rows: %v, want %s", c.rows, err, c.want)
		}
		rec.Release()
		col.Release()
	}
	nulls.Release()
}

// --out naming a named pipe (or /dev/null) writes the stream into it rather
// than renaming a file over it.
func TestCreateSpecialFile(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	rec := makeSample(3).record(t)
	defer rec.Release()
	got := make(chan []byte)
	go func() {
		b, _ := os.ReadFile(fifo)
		got <- b
	}()
	w, err := Create(fifo, rec.Schema(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, rec)
	if b := <-got; !bytes.Equal(b, encode(t, rec, Options{})) {
		t.Errorf("the pipe's reader got %d bytes, not the stream", len(b))
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("%s is no longer a named pipe: %v %v", fifo, fi.Mode(), err)
	}
}

// TestBinaries: image_bytes read from binary, large_binary and binary_view
// arrays (what other tools write back), sliced batches, and nulls, wrong
// types and a missing column refused with clear errors.
func TestBinaries(t *testing.T) {
	mem := memory.DefaultAllocator
	vals := [][]byte{{0xff, 0xd8, 0xff}, {}, {0, 1, 2, 3, 0x89}, []byte("a longer value than a view's inline twelve bytes")}
	large := array.NewBinaryBuilder(mem, arrow.BinaryTypes.LargeBinary)
	large.AppendValues(vals, nil)
	view := array.NewBinaryViewBuilder(mem)
	view.AppendValues(vals, nil)
	for _, col := range []arrow.Array{NewBinaries(vals), large.NewArray(), view.NewArray()} {
		schema := arrow.NewSchema([]arrow.Field{{Name: ColImageBytes, Type: col.DataType()}}, nil)
		rec := array.NewRecordBatch(schema, []arrow.Array{col}, int64(len(vals)))
		got, err := Binaries(rec, ColImageBytes)
		if err != nil || !slices.EqualFunc(got, vals, bytes.Equal) {
			t.Errorf("%s: %q %v", col.DataType(), got, err)
		}
		part := rec.NewSlice(2, 4)
		got, err = Binaries(part, ColImageBytes)
		if err != nil || !slices.EqualFunc(got, vals[2:], bytes.Equal) {
			t.Errorf("%s sliced: %q %v", col.DataType(), got, err)
		}
		part.Release()
		rec.Release()
	}

	nb := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
	nb.AppendValues([][]byte{{1}, nil, {2}}, []bool{true, false, true})
	schema := arrow.NewSchema([]arrow.Field{ImageBytesField(), ImagePathField()}, nil)
	paths := NewStrings([]string{"a", "b", "c"})
	rec := array.NewRecordBatch(schema, []arrow.Array{nb.NewArray(), paths}, 3)
	defer rec.Release()
	if _, err := Binaries(rec, ColImageBytes); err == nil || err.Error() != "column image_bytes: row 1 is null" {
		t.Errorf("null row: %v", err)
	}
	wrong := arrow.NewSchema([]arrow.Field{{Name: ColImageBytes, Type: arrow.BinaryTypes.String}}, nil)
	if err := RequireColumns(wrong, ColImageBytes); err == nil || err.Error() != "column image_bytes has type utf8, want binary" {
		t.Errorf("utf8 image_bytes: %v", err)
	}
	if err := RequireColumns(arrow.NewSchema(nil, nil), ColImageBytes); err == nil || err.Error() != "column image_bytes missing; run prepare --embed-images first" {
		t.Errorf("missing image_bytes: %v", err)
	}
}
