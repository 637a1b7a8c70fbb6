package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/stream/jstest"
)

type jsDump struct {
	Format   string            `json:"format"`
	NumRows  int               `json:"numRows"`
	Batches  int               `json:"batches"`
	Metadata map[string]string `json:"metadata"`
	Columns  map[string]struct {
		Type string `json:"type"`
		Rows any    `json:"rows"`
	} `json:"columns"`
}

// asJSON normalises Go values the way the JSON from node decodes.
func asJSON(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	json.Unmarshal(b, &out)
	return out
}

// f64 widens values so JSON carries float32s exactly as JS prints them.
func f64[T uint8 | int32 | float32](v []T) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func nested[T int32 | float32](l Lists[T]) [][][]float64 {
	out := make([][][]float64, l.Rows())
	for i := range out {
		out[i] = [][]float64{}
		for j := range l.Count(i) {
			out[i] = append(out[i], f64(l.Item(i, j)))
		}
	}
	return out
}

func rowsOf[T uint8 | float32](f Fixed[T]) [][]float64 {
	out := make([][]float64, f.Rows())
	for i := range out {
		out[i] = f64(f.Row(i))
	}
	return out
}

// binRows is binary values as JS gives them (Uint8Array, as numbers).
func binRows(v [][]byte) [][]float64 {
	out := make([][]float64, len(v))
	for i, b := range v {
		out[i] = f64(b)
	}
	return out
}

// TestJavaScriptArrowReadsStream: apache-arrow JS reads our streams and our
// IPC files (the latter through the footer, batch by batch at random).
func TestJavaScriptArrowReadsStream(t *testing.T) {
	jstest.Require(t)
	s := makeSample(13)
	// Non-integer floats, so exact float32 transport is checked too.
	for i := range s.emb.Values {
		s.emb.Values[i] = float32(i)/7 - 1
	}
	rec := s.record(t)
	defer rec.Release()
	caps := make([][]string, len(s.caps))
	for i, c := range s.caps {
		caps[i] = append([]string{}, c...)
	}
	want := map[string]any{
		ColImageID: s.ids, ColSplit: s.splits, ColImagePath: s.paths, "user_note": s.extra, ColImageBytes: binRows(s.imgs),
		ColCaptions: caps, ColCaptionTokens: nested(s.tok), ColCaptionEmbeddings: nested(s.cemb),
		ColPixels: rowsOf(s.pix), ColImageEmbedding: rowsOf(s.emb),
	}
	for _, format := range []Format{FormatStream, FormatFile} {
		for _, comp := range []string{"", "zstd"} {
			name := map[Format]string{FormatStream: "stream", FormatFile: "file"}[format]
			t.Run(name+"/compress="+comp, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "s.arrow")
				if err := os.WriteFile(path, encode(t, rec, Options{Format: format, Compress: comp, BatchRows: 4}), 0o644); err != nil {
					t.Fatal(err)
				}
				out := jstest.Read(t, path, comp)
				var got jsDump
				if err := json.Unmarshal(out, &got); err != nil {
					t.Fatalf("node output: %v\n%s", err, out)
				}
				if got.Format != name {
					t.Errorf("JS reads it as a %s, want a %s", got.Format, name)
				}
				if got.NumRows != 13 || got.Batches != 4 {
					t.Errorf("JS sees %d rows in %d batches, want 13 in 4", got.NumRows, got.Batches)
				}
				if got.Metadata[MetaImageSize] != "2" || got.Metadata[MetaProvenance] == "" {
					t.Errorf("JS metadata %v", got.Metadata)
				}
				for name, w := range want {
					col, ok := got.Columns[name]
					if !ok {
						t.Errorf("JS lacks column %s", name)
						continue
					}
					if !reflect.DeepEqual(col.Rows, asJSON(t, w)) {
						t.Errorf("column %s (JS type %s) differs:\n JS:  %v\n Go:  %v", name, col.Type, col.Rows, asJSON(t, w))
					}
				}
				if len(got.Columns) != len(want) {
					t.Errorf("JS sees %d columns, want %d", len(got.Columns), len(want))
				}
				t.Logf("JS types: caption_tokens %s, pixels %s, caption_embeddings %s",
					got.Columns[ColCaptionTokens].Type, got.Columns[ColPixels].Type, got.Columns[ColCaptionEmbeddings].Type)
			})
		}
	}
}

// TestReadsJavaScriptArrow: an IPC file and a stream written by apache-arrow
// JS (testdata/js/write.mjs) read here as a file (random access) and as a
// stream, with the values write.mjs computes.
func TestReadsJavaScriptArrow(t *testing.T) {
	jstest.Require(t)
	dir := t.TempDir()
	file, strm := filepath.Join(dir, "js.arrow"), filepath.Join(dir, "js.arrows")
	jstest.Run(t, "write.mjs", file, strm)
	var ids, splits []string
	var caps [][]string
	var emb []float32
	var imgs [][]byte
	for i := range 5 {
		ids = append(ids, fmt.Sprintf("js%d", i))
		splits = append(splits, []string{"train", "test"}[i%2])
		c := []string{}
		for j := range i % 3 {
			c = append(c, fmt.Sprintf("caption %d of %d ✓", j, i))
		}
		caps = append(caps, c)
		emb = append(emb, float32(i), float32(i)/4, -float32(i))
		img := make([]byte, 5*i)
		for k := range img {
			img[k] = byte(31*i + k)
		}
		imgs = append(imgs, img)
	}
	fileBytes, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// apache-arrow JS leaves the schema message out of a file's stream
	// part (the format allows it: the footer has the schema), so in order,
	// from a pipe, there is no schema to read: a clear error.
	if _, err := NewReader(bytes.NewReader(fileBytes), "pipe"); err == nil || !strings.Contains(err.Error(), "pipe: this IPC file keeps its schema only in the footer") {
		t.Errorf("JS file from a pipe: %v", err)
	}
	open := map[string]func() (*Reader, error){
		"file":   func() (*Reader, error) { return Open(file) },
		"stream": func() (*Reader, error) { return Open(strm) },
	}
	for name, openIt := range open {
		t.Run(name, func(t *testing.T) {
			r, err := openIt()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if err := r.Require(ColImageID, ColSplit, ColCaptions, ColImageEmbedding, ColImageBytes); err != nil {
				t.Fatal(err)
			}
			if v, _ := r.Meta("written_by"); v != "apache-arrow js" {
				t.Errorf("metadata written_by = %q", v)
			}
			wantBatches := map[string]int{"file": 2, "stream": -1}[name]
			if n := r.NumBatches(); n != wantBatches {
				t.Errorf("NumBatches %d, want %d", n, wantBatches)
			}
			var gotIDs, gotSplits []string
			var gotCaps [][]string
			var gotEmb []float32
			var gotImgs [][]byte
			var sizes []int64
			for r.Next() {
				b := r.Batch()
				sizes = append(sizes, b.NumRows())
				i, _ := Strings(b, ColImageID)
				s, _ := Strings(b, ColSplit)
				c, _ := StringLists(b, ColCaptions)
				e, err := ImageEmbeddings(b)
				if err != nil {
					t.Fatal(err)
				}
				gotIDs, gotSplits, gotCaps = append(gotIDs, i...), append(gotSplits, s...), append(gotCaps, c...)
				gotEmb = append(gotEmb, e.Values...)
				bin, err := Binaries(b, ColImageBytes)
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range bin {
					gotImgs = append(gotImgs, bytes.Clone(v))
				}
			}
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
			for i := range gotCaps {
				if gotCaps[i] == nil {
					gotCaps[i] = []string{}
				}
			}
			if !reflect.DeepEqual(sizes, []int64{3, 2}) || !reflect.DeepEqual(gotIDs, ids) || !reflect.DeepEqual(gotSplits, splits) ||
				!reflect.DeepEqual(gotCaps, caps) || !reflect.DeepEqual(gotEmb, emb) || !slices.EqualFunc(gotImgs, imgs, bytes.Equal) {
				t.Errorf("read batches %v: ids %v splits %v captions %q embeddings %v\nwant ids %v splits %v captions %q embeddings %v",
					sizes, gotIDs, gotSplits, gotCaps, gotEmb, ids, splits, caps, emb)
			}
			if wantBatches > 0 {
				b, err := r.BatchAt(1)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Release()
				if i, _ := Strings(b, ColImageID); !reflect.DeepEqual(i, ids[3:]) {
					t.Errorf("BatchAt(1) ids %v, want %v", i, ids[3:])
				}
			}
		})
	}
}
