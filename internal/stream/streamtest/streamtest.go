// Package streamtest writes clipline streams for other packages' tests.
// (internal/stream's own tests cannot import it.)
package streamtest

import (
	"bytes"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/clipline/clipline/internal/stream"
)

// WriteFile writes recs to path as a stream with the given schema, through
// stream.Create; no recs writes a stream of no rows. t fails on any error.
func WriteFile(t testing.TB, path string, schema *arrow.Schema, opts stream.Options, recs ...arrow.RecordBatch) {
	t.Helper()
	w, err := stream.Create(path, schema, opts)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, recs)
}

// Encode is the stream of recs as bytes.
func Encode(t testing.TB, schema *arrow.Schema, opts stream.Options, recs ...arrow.RecordBatch) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := stream.NewWriter(&buf, "test", schema, opts)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, recs)
	return buf.Bytes()
}

func write(t testing.TB, w *stream.Writer, recs []arrow.RecordBatch) {
	t.Helper()
	defer w.Abort() // a no-op after Close
	for _, rec := range recs {
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// Batches reads every record batch of the stream at path, retained until
// the test ends. t fails on any error.
func Batches(t testing.TB, path string) []arrow.RecordBatch {
	t.Helper()
	r, err := stream.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []arrow.RecordBatch
	for r.Next() {
		b := r.Batch()
		b.Retain()
		t.Cleanup(b.Release)
		out = append(out, b)
	}
	if err := r.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}
