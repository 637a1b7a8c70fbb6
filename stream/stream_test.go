package stream_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	istream "github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/stream"
)

// embedded encodes two embedded rows as the stages write them.
func embedded() []byte {
	fields := []arrow.Field{istream.ImageIDField(), istream.SplitField(), istream.ImageBytesField(), istream.CaptionsField(),
		istream.ImageEmbeddingField(2), istream.CaptionEmbeddingsField(2)}
	cols := []arrow.Array{
		istream.NewStrings([]string{"a", "b"}),
		istream.NewStrings([]string{"test", "train"}),
		istream.NewBinaries([][]byte{[]byte("\x89PNG..."), {0xff, 0xd8, 0xff}}),
		istream.NewStringLists([][]string{{"a dog", "a red dog"}, {"a cat"}}),
		istream.NewImageEmbeddings(istream.Vectors{Width: 2, Values: []float32{1, 0, 0, 1}}),
		istream.NewCaptionEmbeddings(istream.VectorLists{Width: 2, Values: []float32{1, 0, 0.6, 0.8, 0, 1}, Offsets: []int32{0, 2, 3}}),
	}
	schema := istream.WithProvenance(arrow.NewSchema(fields, nil), "embed", []string{"--model", "m"})
	rec := array.NewRecordBatch(schema, cols, 2)
	defer rec.Release()
	var b bytes.Buffer
	w, err := istream.NewWriter(&b, "test", schema, istream.Options{Compress: "zstd"})
	if err == nil {
		err = errors.Join(w.Write(rec), w.Close())
	}
	if err != nil {
		panic(err) // fixed data: cannot fail
	}
	return b.Bytes()
}

func TestRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "emb.arrow")
	if err := os.WriteFile(path, embedded(), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := stream.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if steps, err := r.Provenance(); err != nil || len(steps) != 1 || steps[0].Stage != "embed" || !slices.Equal(steps[0].Args, []string{"--model", "m"}) {
		t.Errorf("provenance %+v, %v", steps, err)
	}
	var ids []string
	var caps [][]string
	var img, cap1 []float32
	var files [][]byte
	for r.Next() {
		b := r.Batch()
		id, err1 := stream.Strings(b, stream.ColImageID)
		c, err2 := stream.StringLists(b, stream.ColCaptions)
		e, err3 := stream.ImageEmbeddings(b)
		ce, err4 := stream.CaptionEmbeddings(b)
		f, err5 := stream.ImageBytes(b)
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			t.Fatal(err)
		}
		ids, caps = append(ids, id...), append(caps, c...)
		img = append(img, e.Row(1)...)
		cap1 = append(cap1, ce.Item(0, 1)...)
		for _, v := range f {
			files = append(files, bytes.Clone(v))
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"a", "b"}) || len(caps) != 2 || !slices.Equal(caps[0], []string{"a dog", "a red dog"}) ||
		!slices.Equal(img, []float32{0, 1}) || !slices.Equal(cap1, []float32{0.6, 0.8}) ||
		len(files) != 2 || string(files[0]) != "\x89PNG..." || !bytes.Equal(files[1], []byte{0xff, 0xd8, 0xff}) {
		t.Errorf("read ids %v, captions %v, image 1 %v, caption (0,1) %v, image_bytes %q", ids, caps, img, cap1, files)
	}
}

// TestFileAndParts: an IPC file is read at random, a directory of parts as
// one input.
func TestFileAndParts(t *testing.T) {
	r, err := stream.NewReader(bytes.NewReader(embedded()), "emb")
	if err != nil {
		t.Fatal(err)
	}
	r.Next()
	rec := r.Batch()
	dir := filepath.Join(t.TempDir(), "parts")
	os.Mkdir(dir, 0o755)
	for k := range 2 {
		w, err := istream.Create(filepath.Join(dir, istream.PartName(k, 2)), rec.Schema(), istream.Options{})
		if err != nil {
			t.Fatal(err)
		}
		part := rec.NewSlice(int64(k), int64(k+1))
		err = errors.Join(w.Write(part), w.Close())
		part.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	r, err = stream.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.NumBatches() != 2 {
		t.Fatalf("NumBatches %d", r.NumBatches())
	}
	b, err := r.BatchAt(1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	if ids, _ := stream.Strings(b, stream.ColImageID); !slices.Equal(ids, []string{"b"}) {
		t.Errorf("BatchAt(1) ids %v", ids)
	}
	var ids []string
	for r.Next() {
		id, _ := stream.Strings(r.Batch(), stream.ColImageID)
		ids = append(ids, id...)
	}
	if r.Err() != nil || !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("parts read as ids %v (%v)", ids, r.Err())
	}
}

// TestTruncated: a stream cut short is an error, never a normal end.
func TestTruncated(t *testing.T) {
	data := embedded()
	r, err := stream.NewReader(bytes.NewReader(data[:len(data)-8]), "cut")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
	}
	if !errors.Is(r.Err(), stream.ErrTruncated) {
		t.Errorf("cut stream: %v, want ErrTruncated", r.Err())
	}
	if _, err := stream.NewReader(bytes.NewReader([]byte("{}\n")), "json"); err == nil {
		t.Error("a non-Arrow input was read")
	}
}

// Reading the ids and image embeddings of an embedded stream (here from
// memory; stream.Open reads a file).
func Example() {
	data := embedded()
	r, err := stream.NewReader(bytes.NewReader(data), "emb.arrow")
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		ids, err := stream.Strings(r.Batch(), stream.ColImageID)
		if err != nil {
			log.Fatal(err)
		}
		emb, err := stream.ImageEmbeddings(r.Batch())
		if err != nil {
			log.Fatal(err)
		}
		for i, id := range ids {
			fmt.Println(id, emb.Row(i))
		}
	}
	if err := r.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// a [1 0]
	// b [0 1]
}
