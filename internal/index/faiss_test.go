package index

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/index/indextest"
	"github.com/clipline/clipline/internal/testreq"
)

// python is Debian's python3 with python3-faiss, or the test skips (fails
// with CLIPLINE_REQUIRE_FAISS=1, as CI sets).
func python(t *testing.T) string {
	t.Helper()
	return testreq.Python(t, "CLIPLINE_REQUIRE_FAISS", "the FAISS round trip", "faiss", "python3-faiss")
}

// faissScript loads an index with faiss.read_index and searches it.
const faissScript = `
import json, sys
import numpy as np, faiss
ix = faiss.read_index(sys.argv[1])
q = np.fromfile(sys.argv[2], dtype="<f4").reshape(-1, ix.d)
D, I = ix.search(q, int(sys.argv[3]))
print(json.dumps({"type": type(ix).__name__, "ntotal": ix.ntotal, "dim": ix.d, "metric": ix.metric_type,
                  "is_trained": ix.is_trained, "inner_product": ix.metric_type == faiss.METRIC_INNER_PRODUCT,
                  "vectors": ix.reconstruct_n(0, ix.ntotal).astype(float).ravel().tolist(),
                  "dist": D.astype(float).tolist(), "ids": I.tolist()}))
`

type faissOut struct {
	Type         string
	NTotal       int
	Dim          int
	InnerProduct bool `json:"inner_product"`
	IsTrained    bool `json:"is_trained"`
	Vectors      []float64
	Dist         [][]float64
	IDs          [][]int32
}

func searchFaiss(t *testing.T, py, index string, queries []float32, k int) faissOut {
	t.Helper()
	qf := filepath.Join(t.TempDir(), "queries.f32")
	if err := writeFloats(qf, nil, queries); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", faissScript, index, qf, "10")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("faiss: %v\n%s", err, stderr.String())
	}
	var res faissOut
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("faiss output: %v\n%.2000s", err, out)
	}
	return res
}

// TestFaiss: faiss.index loads in Python's faiss as an IndexFlatIP with the
// bundle's count, dimension and vectors, and its top 10 for real queries
// are the bundle's Gallery.Search's (rank's ordering), up to ties that
// faiss's summation order may break otherwise.
func TestFaiss(t *testing.T) {
	py := python(t)
	in := embeddedStream(t)
	rows := readRows(t, in)
	// More vectors than vectorWriter packs at a time, not a whole number of
	// panels: the file is written a chunk at a time and patched at the end.
	many := filepath.Join(t.TempDir(), "many.arrow")
	manyRows, manyVecs := randomRows(chunkRows+37, 8)
	indextest.Write(t, many, 8, 1000, manyRows, nil)
	for _, c := range []struct {
		name     string
		in       string
		captions bool
		queries  []float32 // image_embedding queries a captions index and vice versa
	}{
		{"images", in, false, rows.caps.Values},
		{"captions", in, true, rows.images.Values},
		{"chunks", many, false, manyVecs[:20*8]},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "b")
			if _, err := build(t, c.in, dir, BuildOptions{Captions: c.captions, Faiss: true}); err != nil {
				t.Fatal(err)
			}
			b := open(t, dir)
			n, d := b.Len(), b.Gallery.Dim()
			var vecs []float32
			for r := range n {
				vecs = append(vecs, b.Gallery.Vector(int32(r), nil)...)
			}
			got := searchFaiss(t, py, filepath.Join(dir, FaissFile), c.queries, 10)
			if got.Type != "IndexFlatIP" && got.Type != "IndexFlat" || !got.InnerProduct || !got.IsTrained || got.NTotal != n || got.Dim != d {
				t.Fatalf("faiss reads a %s (inner product %v, trained %v) of %d×%d, want an IndexFlatIP of %d×%d",
					got.Type, got.InnerProduct, got.IsTrained, got.NTotal, got.Dim, n, d)
			}
			for i, v := range vecs {
				if float64(v) != got.Vectors[i] {
					t.Fatalf("faiss's vector %d differs from the bundle's at %d: %v, %v", i/d, i%d, got.Vectors[i], v)
				}
			}
			hits, err := b.Gallery.Search(c.queries, 10, nil)
			if err != nil {
				t.Fatal(err)
			}
			nq := len(c.queries) / d
			if len(got.IDs) != nq {
				t.Fatalf("faiss answered %d queries of %d", len(got.IDs), nq)
			}
			swaps := 0
			for q := range nq {
				for r := range 10 {
					fi, ci, score := got.IDs[q][r], hits[q][r].Row, hits[q][r].Score
					if d := got.Dist[q][r] - float64(score); !(math.Abs(d) <= 1e-5) {
						t.Errorf("query %d rank %d: faiss scores %v, clipline %v", q, r+1, got.Dist[q][r], score)
					}
					if fi == ci {
						continue
					}
					// Only a tie may be broken otherwise: the two rows score
					// the same to float32 rounding.
					if other := dot(c.queries[q*d:(q+1)*d], vecs[int(fi)*d:(int(fi)+1)*d]); !(math.Abs(float64(other-score)) <= 1e-6) {
						t.Errorf("query %d rank %d: faiss row %d (%v), clipline row %d (%v)", q, r+1, fi, other, ci, score)
					}
					swaps++
				}
			}
			t.Logf("%s: %d queries over %d vectors: top 10 equal but for %d near-tied swaps", c.name, nq, n, swaps)
		})
	}
}

func dot(a, b []float32) float32 {
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
