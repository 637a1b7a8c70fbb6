package streamtest

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/clipline/clipline/internal/stream"
)

func TestWriteFileAndEncode(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{stream.ImageIDField()}, nil)
	var recs []arrow.RecordBatch
	for _, ids := range [][]string{{"a", "b"}, {"c"}} {
		rec := array.NewRecordBatch(schema, []arrow.Array{stream.NewStrings(ids)}, int64(len(ids)))
		defer rec.Release()
		recs = append(recs, rec)
	}
	path := filepath.Join(t.TempDir(), "s.arrows") // a stream, as Encode writes
	WriteFile(t, path, schema, stream.Options{}, recs...)
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, Encode(t, schema, stream.Options{}, recs...)) {
		t.Error("WriteFile and Encode wrote different streams")
	}
	r, err := stream.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []string
	for r.Next() {
		ids, err := stream.Strings(r.Batch(), stream.ColImageID)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids...)
	}
	if r.Err() != nil || !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("read %v, %v", got, r.Err())
	}

	// No batches: a complete stream of no rows.
	r, err = stream.NewReader(bytes.NewReader(Encode(t, schema, stream.Options{})), "empty")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Next() || r.Err() != nil {
		t.Errorf("empty stream: a batch, or %v", r.Err())
	}
}
