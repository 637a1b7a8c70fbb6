// Package shardtest checks a sharded stage against its unsharded run: the
// parts of N = 1, 3 and 7, read back in order, equal the whole output row
// for row with byte-identical columns.
package shardtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/clipline/clipline/internal/shard"
	"github.com/clipline/clipline/internal/stream"
)

// Counts are the part counts every stage is checked with.
var Counts = []int{1, 3, 7}

// Table is a stream read whole: its schema and each column's values,
// concatenated over batches and encoded as a one-column IPC stream, so
// comparing two is comparing the bytes (NaNs included) whatever the
// batching.
type Table struct {
	Schema  *arrow.Schema
	Rows    int64
	Columns [][]byte
}

// Read reads the stream at path (a file, or a directory of parts) whole.
func Read(t testing.TB, path string) Table {
	t.Helper()
	r, err := stream.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tb := Table{Schema: r.Schema()}
	cols := make([][]arrow.Array, len(tb.Schema.Fields()))
	for r.Next() {
		rec := r.Batch()
		tb.Rows += rec.NumRows()
		for i, c := range rec.Columns() {
			c.Retain()
			cols[i] = append(cols[i], c)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	for i, chunks := range cols {
		tb.Columns = append(tb.Columns, encode(t, tb.Schema.Field(i), chunks))
		for _, c := range chunks {
			c.Release()
		}
	}
	return tb
}

// encode is one column's chunks as a canonical one-batch IPC stream.
func encode(t testing.TB, f arrow.Field, chunks []arrow.Array) []byte {
	t.Helper()
	f.Metadata = arrow.Metadata{}
	schema := arrow.NewSchema([]arrow.Field{f}, nil)
	var col arrow.Array
	if len(chunks) == 0 {
		col = array.MakeArrayOfNull(memory.DefaultAllocator, f.Type, 0)
	} else {
		var err error
		if col, err = array.Concatenate(chunks, memory.DefaultAllocator); err != nil {
			t.Fatalf("column %s: %v", f.Name, err)
		}
	}
	defer col.Release()
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, int64(col.Len()))
	defer rec.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
	if err := w.Write(rec); err != nil {
		t.Fatalf("column %s: %v", f.Name, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Equal fails t unless got has want's fields (names and types, in order),
// rows and column bytes, and the same schema metadata apart from the
// provenance (whose last entry names --shard and --out).
func Equal(t testing.TB, what string, want, got Table) {
	t.Helper()
	if !fieldsEqual(want.Schema, got.Schema) {
		t.Fatalf("%s: fields %v, want %v", what, got.Schema.Fields(), want.Schema.Fields())
	}
	if got.Rows != want.Rows {
		t.Fatalf("%s: %d rows, want %d", what, got.Rows, want.Rows)
	}
	for i, f := range want.Schema.Fields() {
		if !bytes.Equal(got.Columns[i], want.Columns[i]) {
			t.Errorf("%s: column %s differs from the unsharded run's", what, f.Name)
		}
	}
	if w, g := metaBut(want.Schema, stream.MetaProvenance), metaBut(got.Schema, stream.MetaProvenance); !slices.Equal(w, g) {
		t.Errorf("%s: schema metadata %v, want %v", what, g, w)
	}
}

func fieldsEqual(a, b *arrow.Schema) bool {
	return slices.EqualFunc(a.Fields(), b.Fields(), func(x, y arrow.Field) bool {
		return x.Name == y.Name && x.Nullable == y.Nullable && arrow.TypeEqual(x.Type, y.Type)
	})
}

// metaBut is the schema metadata without key, as sorted "k=v" strings.
func metaBut(s *arrow.Schema, key string) []string {
	var kv []string
	md := s.Metadata()
	for i, k := range md.Keys() {
		if k != key {
			kv = append(kv, k+"="+md.Values()[i])
		}
	}
	slices.Sort(kv)
	return kv
}

// Check runs a stage for every part of each of Counts into a fresh
// directory, through run(part, dir) (the stage with --shard part and --out
// dir), and compares the directory, read as one input (stream.Open), with
// the unsharded output at whole. It returns the directories, by count.
func Check(t *testing.T, whole string, run func(t *testing.T, part shard.Spec, dir string)) map[int]string {
	t.Helper()
	want := Read(t, whole)
	if want.Rows < int64(slices.Max(Counts)) {
		t.Fatalf("%s has %d rows: too few to leave a part of %d parts non-empty", whole, want.Rows, slices.Max(Counts))
	}
	dirs := map[int]string{}
	for _, n := range Counts {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("parts%d", n))
		for k := range n {
			run(t, shard.Spec{K: k, N: n}, dir)
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names, wantNames []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		for k := range n {
			wantNames = append(wantNames, stream.PartName(k, n))
		}
		if !slices.Equal(names, wantNames) {
			t.Fatalf("N=%d: %s holds %v, want %v", n, dir, names, wantNames)
		}
		Equal(t, fmt.Sprintf("%d parts", n), want, Read(t, dir))
		dirs[n] = dir
	}
	return dirs
}

// Rebatch copies the stream at src to dst in record batches of rows rows,
// so that a small input has batches enough for 7 parts.
func Rebatch(t testing.TB, src, dst string, rows int) {
	t.Helper()
	r, err := stream.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := stream.Create(dst, r.Schema(), stream.Options{BatchRows: rows})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for r.Next() {
		if err := w.Write(r.Batch()); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
