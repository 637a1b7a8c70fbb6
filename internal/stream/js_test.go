package stream

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/clipline/clipline/internal/stream/jstest"
)

type jsDump struct {
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
	for _, comp := range []string{"", "zstd"} {
		t.Run("compress="+comp, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.arrow")
			if err := os.WriteFile(path, encode(t, rec, Options{Compress: comp, BatchRows: 4}), 0o644); err != nil {
				t.Fatal(err)
			}
			out := jstest.Read(t, path, comp)
			var got jsDump
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("node output: %v\n%s", err, out)
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
