package search

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/metrics"
	"github.com/clipline/clipline/internal/search/searchtest"
	"github.com/clipline/clipline/internal/simd"
)

// rankTop is metrics.Rank's top k gallery rows (and scores) for each query,
// -1 padded: the reference Search must equal.
func rankTop(t *testing.T, queries, gallery []float32, d, k int) metrics.TopK {
	t.Helper()
	m, n := len(queries)/d, len(gallery)/d
	res, err := metrics.Rank(metrics.Input{Dim: d, Captions: queries, Images: gallery,
		T2I: metrics.Relevance{Offsets: make([]int32, m+1)},
		I2T: metrics.Relevance{Offsets: make([]int32, n+1)}}, metrics.Options{TopK: k})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kernel != simd.Selected().String() {
		t.Fatalf("rank scored with %s, search with %s", res.Kernel, simd.Selected())
	}
	return res.T2I.Top
}

// sameAsRank fails unless hits are exactly rank's top list for each query:
// the same rows in the same order, bit-identical scores, and no more than
// the rows rank found. rows maps rank's gallery rows to Search's (nil: the
// same).
func sameAsRank(t *testing.T, name string, hits [][]Hit, top metrics.TopK, rows []int32) {
	t.Helper()
	k := top.K
	if len(hits) != len(top.Items)/k {
		t.Fatalf("%s: %d result lists for %d queries", name, len(hits), len(top.Items)/k)
	}
	for q, hs := range hits {
		items, scores := top.Items[q*k:(q+1)*k], top.Scores[q*k:(q+1)*k]
		want := k
		for want > 0 && items[want-1] < 0 {
			want--
		}
		if len(hs) != want {
			t.Fatalf("%s: query %d: %d hits, rank has %d", name, q, len(hs), want)
		}
		for i, h := range hs {
			row := items[i]
			if rows != nil {
				row = rows[row]
			}
			if h.Row != row || math.Float32bits(h.Score) != math.Float32bits(scores[i]) {
				t.Fatalf("%s: query %d hit %d: row %d score %g (%#x), rank row %d score %g (%#x)",
					name, q, i, h.Row, h.Score, math.Float32bits(h.Score), row, scores[i], math.Float32bits(scores[i]))
			}
		}
	}
}

// duplicate copies gallery (or query) rows onto others so that scores tie,
// within a panel and across panels.
func duplicate(x []float32, d int, pairs [][2]int) {
	for _, p := range pairs {
		if n := len(x) / d; p[0] < n && p[1] < n {
			copy(x[p[1]*d:(p[1]+1)*d], x[p[0]*d:(p[0]+1)*d])
		}
	}
}

// Search equals rank's top k on random unit vectors: one query (row
// kernel) and several (tiles, with a part panel), galleries that are not a
// multiple of the panel width, k beyond the gallery, duplicated vectors
// (ties, broken by row), and scans split over many workers and tasks.
func TestMatchesRank(t *testing.T) {
	for _, c := range []struct {
		n, d, nq, k int
	}{
		{1, 1, 1, 1},
		{5, 7, 3, 10},   // k > n
		{37, 33, 1, 40}, // k > n, row kernel
		{1000, 64, 1, 10},
		{1000, 64, 1, 2}, // k inside a group of tied rows
		{1000, 64, 4, 3},
		{1007, 64, 2, 10},
		{1003, 48, 5, 25},
		{2049, 100, 13, 7},
		{3001, 128, 64, 10},
		{3001, 128, 64, 2},
		{700, 16, 70, 700}, // k = n
	} {
		gallery := searchtest.Seeded(uint64(c.n), c.n, c.d)
		queries := searchtest.Seeded(uint64(c.n+1), c.nq, c.d)
		duplicate(gallery, c.d, [][2]int{{3, 4}, {3, 40}, {3, 999}, {10, 2}, {500, 1002}, {7, 700}})
		duplicate(queries, c.d, [][2]int{{0, 2}, {1, 12}})
		// Queries equal to gallery rows put tied rows on top.
		for q := 0; q < c.nq; q += 3 {
			r := []int{3, 10, 500, 7}[q/3%4] % c.n
			copy(queries[q*c.d:(q+1)*c.d], gallery[r*c.d:(r+1)*c.d])
		}
		top := rankTop(t, queries, gallery, c.d, c.k)
		data, width := Pack(gallery, c.d)
		g, err := NewGallery(data, width, c.n, c.d)
		if err != nil {
			t.Fatal(err)
		}
		if g.Repacked() || g.Len() != c.n || g.Dim() != c.d {
			t.Fatalf("gallery: repacked %v, %d×%d", g.Repacked(), g.Len(), g.Dim())
		}
		for _, split := range [][2]int{{0, 0}, {3, 1}, {7, 2}} {
			g.workers, g.chunk = split[0], split[1]
			name := fmt.Sprintf("%s n=%d d=%d q=%d k=%d workers=%d chunk=%d", simd.Selected(), c.n, c.d, c.nq, c.k, split[0], split[1])
			hits, err := g.Search(queries, c.k, nil)
			if err != nil {
				t.Fatal(err)
			}
			sameAsRank(t, name, hits, top, nil)
			checkScores(t, name, hits, queries, gallery, c.d)

			// keep: rank over the kept rows alone, mapped back.
			keep := func(r int32) bool { return r%3 != 1 }
			var kept []float32
			var rows []int32
			for r := range c.n {
				if keep(int32(r)) {
					kept = append(kept, gallery[r*c.d:(r+1)*c.d]...)
					rows = append(rows, int32(r))
				}
			}
			hits, err = g.Search(queries, c.k, keep)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) == 0 {
				for q, hs := range hits {
					if len(hs) != 0 {
						t.Fatalf("%s keep: query %d: %d hits, none kept", name, q, len(hs))
					}
				}
				continue
			}
			sameAsRank(t, name+" keep", hits, rankTop(t, queries, kept, c.d, c.k), rows)
		}
	}
}

// checkScores compares every hit's score with a float64 dot product and
// checks each list is in ranking order: a check independent of rank.
func checkScores(t *testing.T, name string, hits [][]Hit, queries, gallery []float32, d int) {
	t.Helper()
	for q, hs := range hits {
		for i, h := range hs {
			var ref float64
			for p := range d {
				ref += float64(queries[q*d+p]) * float64(gallery[int(h.Row)*d+p])
			}
			if diff := math.Abs(float64(h.Score) - ref); !(diff <= 1e-5) {
				t.Fatalf("%s: query %d row %d: score %g, float64 %g", name, q, h.Row, h.Score, ref)
			}
			if i > 0 && worse(hs[i-1], h) {
				t.Fatalf("%s: query %d: hit %d %+v ranks after hit %d %+v", name, q, i-1, hs[i-1], i, h)
			}
		}
	}
}

// Every available simd level: the test binary runs TestMatchesRank and
// TestRepack again with CLIPLINE_CPU_KERNEL naming the level, which
// switches rank's kernel and Search's alike.
func TestLevels(t *testing.T) {
	if lvl := os.Getenv("CLIPLINE_CPU_KERNEL"); lvl != "" {
		if simd.Selected().String() != lvl {
			t.Fatalf("CLIPLINE_CPU_KERNEL=%s selected %s", lvl, simd.Selected())
		}
		return
	}
	if testing.Short() {
		t.Skip("-short: the selected level only")
	}
	for _, l := range simd.Available() {
		t.Run(l.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^(TestMatchesRank|TestRepack|TestLevels)$", "-test.v")
			cmd.Env = append(os.Environ(), "CLIPLINE_CPU_KERNEL="+l.String())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, test := range []string{"TestMatchesRank", "TestRepack", "TestLevels"} {
				if !strings.Contains(string(out), "--- PASS: "+test) {
					t.Fatalf("%s did not pass at %s:\n%s", test, l, out)
				}
			}
		})
	}
}

// NewGallery takes vectors packed at another panel width (as another
// machine's Pack writes them), repacks them, and searches them as Pack's
// own; Vector returns every row as it went in, either way.
func TestRepack(t *testing.T) {
	const n, d, nq, k = 203, 19, 4, 9
	gallery := searchtest.Seeded(11, n, d)
	queries := searchtest.Seeded(12, nq, d)
	data, width := Pack(gallery, d)
	g, err := NewGallery(data, width, n, d)
	if err != nil {
		t.Fatal(err)
	}
	want, err := g.Search(queries, k, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []int{1, 4, 7, 16, 32} {
		other := make([]float32, simd.RoundUp(n, w)*d)
		for q := 0; q*w < n; q++ {
			simd.PackPanels(other[q*w*d:(q+1)*w*d], gallery, d, 1, q*w, min(w, n-q*w), 0, d, w)
		}
		h, err := NewGallery(other, w, n, d)
		if err != nil {
			t.Fatal(err)
		}
		if h.Repacked() != (w != width) {
			t.Errorf("width %d (kernel's %d): Repacked() = %v", w, width, h.Repacked())
		}
		got, err := h.Search(queries, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		for q := range want {
			if fmt.Sprint(got[q]) != fmt.Sprint(want[q]) {
				t.Fatalf("width %d: query %d: %v, unrepacked %v", w, q, got[q], want[q])
			}
		}
		var v []float32
		for r := range n {
			v = h.Vector(int32(r), v)
			for p := range d {
				if math.Float32bits(v[p]) != math.Float32bits(gallery[r*d+p]) {
					t.Fatalf("width %d: row %d: Vector %v, packed %v", w, r, v, gallery[r*d:(r+1)*d])
				}
			}
		}
	}
}

func TestErrors(t *testing.T) {
	data, width := Pack(searchtest.Seeded(1, 10, 4), 4)
	for _, c := range []struct {
		data          []float32
		width, n, dim int
	}{
		{data, width, 10, 0},
		{data, width, -1, 4},
		{data, 0, 10, 4},
		{data, 33, 10, 4},
		{data[:len(data)-1], width, 10, 4},
		{data, width, 10 + width, 4},
	} {
		if _, err := NewGallery(c.data, c.width, c.n, c.dim); err == nil {
			t.Errorf("NewGallery(%d values, width %d, n %d, dim %d): no error", len(c.data), c.width, c.n, c.dim)
		}
	}
	g, err := NewGallery(data, width, 10, 4)
	if err != nil {
		t.Fatal(err)
	}
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	for _, c := range []struct {
		q    []float32
		k    int
		want string
	}{
		{[]float32{1, 0, 0}, 1, "not a multiple of dimension 4"},
		{[]float32{1, 0, 0, 0}, 0, "k = 0"},
		{[]float32{1, 0, 0, 0, 0, nan, 0, 0}, 1, "query 1: value 1 is NaN"},
		{[]float32{inf, 0, 0, 0}, 1, "query 0: value 0 is +Inf"},
	} {
		_, err := g.Search(c.q, c.k, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Search(%v, %d): error %v, want one saying %q", c.q, c.k, err, c.want)
		}
	}
	if hits, err := g.Search(nil, 3, nil); err != nil || len(hits) != 0 {
		t.Errorf("no queries: %v, %v", hits, err)
	}
	empty, err := NewGallery(nil, width, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	if hits, err := empty.Search([]float32{1, 0, 0, 0}, 3, nil); err != nil || len(hits) != 1 || len(hits[0]) != 0 {
		t.Errorf("empty gallery: %v, %v", hits, err)
	}
}
