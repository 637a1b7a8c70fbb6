package stream

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
)

func TestPartName(t *testing.T) {
	if got := PartName(3, 7); got != "part-00003-of-00007.arrow" {
		t.Errorf("PartName(3, 7) = %q", got)
	}
	for _, c := range [][2]int{{0, 1}, {6, 7}, {99999, 100000}, {123456, 200000}} {
		if k, n, ok := ParsePartName(PartName(c[0], c[1])); !ok || k != c[0] || n != c[1] {
			t.Errorf("ParsePartName(PartName(%d, %d)) = %d, %d, %v", c[0], c[1], k, n, ok)
		}
	}
	for _, bad := range []string{"part-3-of-7.arrow", "part-00007-of-00007.arrow", "part-00000-of-00000.arrow",
		"part-00001-of-00003.arrows", "part-0000a-of-00003.arrow", "xpart-00001-of-00003.arrow", "part--0001-of-00003.arrow", "part-00001-of-00003"} {
		if _, _, ok := ParsePartName(bad); ok {
			t.Errorf("ParsePartName(%q) accepted", bad)
		}
	}
}

// writeParts writes rec's rows as n parts of dir, part k the rows
// [k*rows/n, (k+1)*rows/n), each with its own provenance; format picks the
// parts' format (their names are always .arrow).
func writeParts(t *testing.T, dir string, rec arrow.RecordBatch, n int, opts Options) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rows := rec.NumRows()
	for k := range n {
		lo, hi := int64(k)*rows/int64(n), int64(k+1)*rows/int64(n)
		part := rec.NewSlice(lo, hi)
		schema := WithProvenance(rec.Schema(), "tokenize", []string{"--shard", fmt.Sprintf("%d/%d", k, n)})
		w, err := Create(filepath.Join(dir, PartName(k, n)), schema, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(part); err != nil {
			t.Fatal(err)
		}
		part.Release()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDirectoryOfParts(t *testing.T) {
	s := makeSample(40)
	rec := s.record(t)
	defer rec.Release()
	for _, c := range []struct {
		name    string
		n       int
		opts    Options
		batches int
	}{
		{"files", 1, Options{BatchRows: 4}, 10},
		{"files", 3, Options{BatchRows: 4}, 4 + 4 + 4}, // 13, 13, 14 rows
		{"files", 7, Options{BatchRows: 4, Compress: "zstd"}, 7 * 2},
		{"streams", 3, Options{BatchRows: 4, Format: FormatStream}, -1},
	} {
		t.Run(fmt.Sprintf("%s-%d", c.name, c.n), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "parts")
			writeParts(t, dir, rec, c.n, c.opts)
			// A writer's temporary and a hidden file are no parts.
			os.WriteFile(filepath.Join(dir, ".part-00000-of-00003.arrow.tmp-1"), []byte("partial"), 0o644)
			open := Open
			if c.batches > 0 {
				open = OpenMapped // the same over maps (not for streams)
			}
			for _, open := range []func(string) (*Reader, error){Open, open} {
				readParts(t, open, dir, c.n, c.batches, s.ids)
			}
		})
	}
}

func readParts(t *testing.T, open func(string) (*Reader, error), dir string, n, batches int, want []string) {
	t.Helper()
	r, err := open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Name() != dir || r.NumBatches() != batches {
		t.Errorf("name %q, %d batches, want %d", r.Name(), r.NumBatches(), batches)
	}
	// The first part's metadata, provenance included.
	if prov, _ := Provenance(r.Schema()); len(prov) != 2 || !slices.Equal(prov[1].Args, []string{"--shard", fmt.Sprintf("0/%d", n)}) {
		t.Errorf("provenance %+v", prov)
	}
	var firsts []int64
	var ids []string
	for r.Next() {
		firsts = append(firsts, r.FirstRow())
		got, _ := Strings(r.Batch(), ColImageID)
		ids = append(ids, got...)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, want) || r.RowsRead() != int64(len(want)) {
		t.Errorf("ids %v, want %v", ids, want)
	}
	// Row numbers run on across parts.
	for i := 1; i < len(firsts); i++ {
		if firsts[i] <= firsts[i-1] {
			t.Fatalf("first rows %v", firsts)
		}
	}
}

func TestDirectoryErrors(t *testing.T) {
	rec := makeSample(12).record(t)
	defer rec.Release()
	good := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "parts")
		writeParts(t, dir, rec, 3, Options{})
		return dir
	}
	for _, c := range []struct {
		name  string
		spoil func(t *testing.T, dir string)
		want  string
	}{
		{"empty", func(t *testing.T, dir string) {
			for k := range 3 {
				os.Remove(filepath.Join(dir, PartName(k, 3)))
			}
		}, "/parts: a directory without parts"},
		{"missing", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, PartName(1, 3))) },
			"/parts: 1 of 3 parts missing: part-00001-of-00003.arrow"},
		{"stray file", func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644) },
			"/parts: stray entry notes.txt"},
		{"stray part", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, PartName(0, 4)), nil, 0o644)
		}, "/parts: parts of different counts"},
		{"stray directory", func(t *testing.T, dir string) { os.Mkdir(filepath.Join(dir, "sub"), 0o755) },
			"/parts: stray entry sub"},
		{"other fields", func(t *testing.T, dir string) {
			other := arrow.NewSchema([]arrow.Field{ImageIDField()}, nil)
			w, _ := Create(filepath.Join(dir, PartName(2, 3)), other, Options{})
			w.Close()
		}, "/parts/part-00002-of-00003.arrow: schema differs from "},
		{"other metadata", func(t *testing.T, dir string) {
			w, _ := Create(filepath.Join(dir, PartName(1, 3)), WithMeta(rec.Schema(), MetaImageSize, "3"), Options{})
			w.Close()
		}, `metadata clipline.image_size is "3", the first part's "2"`},
		{"truncated part", func(t *testing.T, dir string) {
			path := filepath.Join(dir, PartName(2, 3))
			data, _ := os.ReadFile(path)
			os.WriteFile(path, data[:len(data)/2], 0o644)
		}, "/parts/part-00002-of-00003.arrow: not a complete Arrow IPC file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := good(t)
			c.spoil(t, dir)
			for name, open := range map[string]func(string) (*Reader, error){"Open": Open, "OpenMapped": OpenMapped} {
				r, err := open(dir)
				if err == nil {
					r.Close()
				}
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%s: %v, want an error with %q", name, err, c.want)
				}
			}
		})
	}
	// A stream part truncated after the first batch fails where it is cut,
	// naming the part and the row reached across the parts.
	dir := filepath.Join(t.TempDir(), "parts")
	writeParts(t, dir, rec, 3, Options{Format: FormatStream, BatchRows: 2})
	path := filepath.Join(dir, PartName(1, 3))
	data, _ := os.ReadFile(path)
	os.WriteFile(path, data[:len(data)-8], 0o644)
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
	}
	if err := r.Err(); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), path+": batch 5 (after row 8)") {
		t.Errorf("truncated stream part: %v", err)
	}
}

func TestShard(t *testing.T) {
	s := makeSample(50)
	rec := s.record(t)
	defer rec.Release()
	file := writeFileBytes(t, encode(t, rec, Options{Format: FormatFile, BatchRows: 3})) // 17 batches
	dir := filepath.Join(t.TempDir(), "parts")
	writeParts(t, dir, rec, 4, Options{BatchRows: 3, Compress: "lz4"})
	for name, path := range map[string]string{"file": file, "directory": dir} {
		for _, n := range []int{1, 3, 7, 20} {
			var ids []string
			var firsts []int64
			for k := range n {
				r, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := r.Shard(k, n); err != nil {
					t.Fatal(err)
				}
				b := r.NumBatches()
				lo := k * b / n
				for r.Next() {
					if r.BatchIndex() != lo+1 {
						t.Errorf("%s %d/%d: batch index %d, want %d", name, k, n, r.BatchIndex(), lo+1)
					}
					lo++
					firsts = append(firsts, r.FirstRow())
					got, _ := Strings(r.Batch(), ColImageID)
					ids = append(ids, got...)
				}
				if err := r.Err(); err != nil {
					t.Fatal(err)
				}
				if lo != (k+1)*b/n {
					t.Errorf("%s %d/%d: read to batch %d, want %d", name, k, n, lo, (k+1)*b/n)
				}
				r.Close()
			}
			// The shards concatenate to the input, and each batch's first row
			// is its row in the whole input.
			if !slices.Equal(ids, s.ids) {
				t.Errorf("%s, %d shards: ids %v", name, n, ids)
			}
			for i, f := range firsts {
				if want := slices.Index(s.ids, ids[0]); i == 0 && f != int64(want) {
					t.Errorf("%s: first row %d", name, f)
				}
				if i > 0 && f <= firsts[i-1] {
					t.Errorf("%s, %d shards: first rows %v", name, n, firsts)
					break
				}
			}
			var want []int64
			for i := 0; i < 50; {
				want = append(want, int64(i))
				// file: batches of 3; directory: parts of 12, 13, 12, 13 rows
				// in batches of 3.
				next := i + 3
				if name == "directory" {
					for _, end := range []int{12, 25, 37, 50} {
						if i < end {
							next = min(next, end)
							break
						}
					}
				}
				i = next
			}
			if !slices.Equal(firsts, want) {
				t.Errorf("%s, %d shards: first rows %v, want %v", name, n, firsts, want)
			}
		}
	}
	// Misuse.
	r, _ := Open(file)
	defer r.Close()
	for _, kn := range [][2]int{{-1, 3}, {3, 3}, {0, 0}} {
		if err := r.Shard(kn[0], kn[1]); err == nil || !strings.Contains(err.Error(), "want 0 <= K < N") {
			t.Errorf("Shard(%d, %d): %v", kn[0], kn[1], err)
		}
	}
	r.Next()
	if err := r.Shard(0, 2); err == nil || !strings.Contains(err.Error(), "Shard after Next") {
		t.Errorf("Shard after Next: %v", err)
	}
	sr, err := NewReader(strings.NewReader(string(encode(t, rec, Options{Format: FormatFile}))), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Close()
	if err := sr.Shard(0, 2); err == nil || !strings.Contains(err.Error(), "stdin: sharding by record batches needs random access") {
		t.Errorf("Shard of a pipe: %v", err)
	}
	streams := filepath.Join(t.TempDir(), "streams")
	writeParts(t, streams, rec, 2, Options{Format: FormatStream})
	dr, err := Open(streams)
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Close()
	if err := dr.Shard(0, 2); err == nil || !strings.Contains(err.Error(), "/streams: sharding by record batches needs random access: an IPC file (written with --out FILE.arrow) or a directory of them") {
		t.Errorf("Shard of a directory of streams: %v", err)
	}
}

func TestOpenMapped(t *testing.T) {
	s := makeSample(20)
	rec := s.record(t)
	defer rec.Release()
	plain := writeFileBytes(t, encode(t, rec, Options{Format: FormatFile, BatchRows: 8}))
	zstd := writeFileBytes(t, encode(t, rec, Options{Format: FormatFile, BatchRows: 8, Compress: "zstd"}))
	r, err := OpenMapped(plain)
	if err != nil {
		t.Fatal(err)
	}
	if r.Compressed() || r.NumBatches() != 3 {
		t.Errorf("compressed %v, %d batches", r.Compressed(), r.NumBatches())
	}
	// Uncompressed pixels alias the map, beyond the batch's release.
	b, err := r.BatchAt(1)
	if err != nil {
		t.Fatal(err)
	}
	pix, err := Pixels(b)
	if err != nil {
		t.Fatal(err)
	}
	b.Release()
	if !slices.Equal(pix.Values, s.pix.Values[8*pix.Width:16*pix.Width]) {
		t.Error("BatchAt(1) pixels differ")
	}
	if !inMap(t, r, pix.Values) {
		t.Error("pixels were copied out of the map")
	}
	got, _ := readAll(t, r)
	checkSame(t, got, s)
	r.Close()

	r, err = OpenMapped(zstd)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Compressed() {
		t.Error("zstd file not reported compressed")
	}
	got, _ = readAll(t, r)
	checkSame(t, got, s)
	r.Close()
	// Open reports compression too.
	if r, _ := Open(zstd); !r.Compressed() {
		t.Error("Open: zstd file not reported compressed")
	} else {
		r.Close()
	}

	stream := filepath.Join(t.TempDir(), "s.arrows")
	os.WriteFile(stream, encode(t, rec, Options{}), 0o644)
	for _, path := range []string{stream, "-", os.DevNull} {
		if _, err := OpenMapped(path); !errors.Is(err, ErrNotMappable) {
			t.Errorf("OpenMapped(%s): %v, want ErrNotMappable", path, err)
		}
	}
}

// inMap says whether v lies in r's first part's map.
func inMap(t *testing.T, r *Reader, v []uint8) bool {
	t.Helper()
	data := r.parts[0].mapped
	p, lo := uintptr(unsafe.Pointer(unsafe.SliceData(v))), uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	return len(data) > 0 && p >= lo && p+uintptr(len(v)) <= lo+uintptr(len(data))
}
