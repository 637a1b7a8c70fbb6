package stream

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// BenchmarkRead reads 512 rows of 224 px pixels (77 MB) written as a stream
// and as an IPC file, each the ways a stage can get it: in order, through
// the footer, over a map, and a Shard's range (a quarter).
func BenchmarkRead(b *testing.B) {
	const rows, side = 512, 224
	pix := PixelRows{Width: side * side * 3, Values: make([]uint8, rows*side*side*3)}
	for i := range pix.Values {
		pix.Values[i] = uint8(i * 7)
	}
	ids := make([]string, rows)
	for i := range ids {
		ids[i] = "img"
	}
	schema := arrow.NewSchema([]arrow.Field{ImageIDField(), PixelsField(side)}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{NewStrings(ids), NewPixels(pix)}, rows)
	defer rec.Release()
	dir := b.TempDir()
	for _, name := range []string{"s.arrows", "f.arrow"} {
		w, err := Create(filepath.Join(dir, name), schema, Options{})
		if err != nil {
			b.Fatal(err)
		}
		writeAll(b, w, rec)
	}
	for _, c := range []struct {
		name  string
		open  func() (*Reader, error)
		shard bool
	}{
		{"stream", func() (*Reader, error) { return Open(filepath.Join(dir, "s.arrows")) }, false},
		{"file-footer", func() (*Reader, error) { return Open(filepath.Join(dir, "f.arrow")) }, false},
		{"file-in-order", func() (*Reader, error) {
			f, err := os.Open(filepath.Join(dir, "f.arrow"))
			if err != nil {
				return nil, err
			}
			return NewReader(f, "pipe") // f leaks until the benchmark ends; fine here
		}, false},
		{"file-mapped", func() (*Reader, error) { return OpenMapped(filepath.Join(dir, "f.arrow")) }, false},
		{"file-shard-3-of-4", func() (*Reader, error) { return Open(filepath.Join(dir, "f.arrow")) }, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(pix.Values)))
			for b.Loop() {
				r, err := c.open()
				if err != nil {
					b.Fatal(err)
				}
				if c.shard {
					if err := r.Shard(3, 4); err != nil {
						b.Fatal(err)
					}
				}
				var sum int
				for r.Next() {
					p, err := Pixels(r.Batch())
					if err != nil {
						b.Fatal(err)
					}
					for i := 0; i < len(p.Values); i += 4096 { // touch every page
						sum += int(p.Values[i])
					}
				}
				if err := r.Err(); err != nil {
					b.Fatal(err)
				}
				r.Close()
				_ = sum
			}
		})
	}
}
