// Package search is exact inner-product top-K search over a gallery of
// vectors packed as the simd micro-kernels read them.
//
// Scores come from the same kernels, on the same panels, as
// metrics.Rank's, and every score is one lane accumulating q[p]·v[p] in p
// order from zero, so a (query, row) pair gets the bit-identical score
// here and in rank on the same machine, and the rankings agree, ties
// included (equal scores: the lower row first).
package search

import (
	"cmp"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/clipline/clipline/internal/parallel"
	"github.com/clipline/clipline/internal/simd"
)

// Hit is one result: a gallery row and its score.
type Hit struct {
	Row   int32
	Score float32
}

// kernel is the micro-kernel that scores (the selected simd level's, as
// metrics.Rank's; CLIPLINE_CPU_KERNEL picks another for both).
func kernel() *simd.Kernel { return simd.KernelFor(simd.Selected()) }

// Pack lays out rows (n×dim, row-major) as the score kernel reads them:
// panels of width vectors, each dim-major (panel q holds
// data[q*width*dim + p*width + j] = rows[(q*width+j)*dim + p]), zero past
// the last vector. width is this machine's kernel's panel width. It panics
// when dim is not positive or len(rows) is not a multiple of it.
func Pack(rows []float32, dim int) (data []float32, width int) {
	if dim <= 0 || len(rows)%dim != 0 {
		panic(fmt.Sprintf("search: Pack of %d values at dimension %d", len(rows), dim))
	}
	width = kernel().NR
	n := len(rows) / dim
	data = make([]float32, simd.RoundUp(n, width)*dim)
	parallel.Tasks(runtime.GOMAXPROCS(0), (n+width-1)/width, func(q, _ int) {
		simd.PackPanels(data[q*width*dim:(q+1)*width*dim], rows, dim, 1, q*width, min(width, n-q*width), 0, dim, width)
	})
	return data, width
}

// Gallery is n packed vectors to search. Its methods are safe for
// concurrent use.
type Gallery struct {
	data          []float32
	width, n, dim int
	kern          *simd.Kernel
	repacked      bool
	// workers and chunk (panels per task) split a scan; 0 takes the
	// defaults (tests set them).
	workers, chunk int
	pool           sync.Pool // *scratch
}

// NewGallery wraps packed data (Pack's layout at the given panel width) of
// n vectors of dimension dim, without copying it, so it may be a memory
// map. When width is not this machine's kernel's, the vectors are repacked
// into memory (Repacked reports it). The values must be finite (Search
// checks the queries, not the gallery).
func NewGallery(data []float32, width, n, dim int) (*Gallery, error) {
	if dim <= 0 || n < 0 || width <= 0 || width > 32 {
		return nil, fmt.Errorf("search: gallery of %d vectors, dimension %d, panel width %d", n, dim, width)
	}
	if n > math.MaxInt32 {
		return nil, fmt.Errorf("search: %d vectors, more than rows can number", n)
	}
	if want := simd.RoundUp(n, width) * dim; len(data) != want {
		return nil, fmt.Errorf("search: %d packed values for %d vectors of dimension %d in panels of %d, want %d", len(data), n, dim, width, want)
	}
	g := &Gallery{data: data, width: width, n: n, dim: dim, kern: kernel()}
	if nr := g.kern.NR; width != nr {
		g.data = make([]float32, simd.RoundUp(n, nr)*dim)
		old := &Gallery{data: data, width: width, n: n, dim: dim}
		parallel.Tasks(runtime.GOMAXPROCS(0), (n+nr-1)/nr, func(q, _ int) {
			lines := min(nr, n-q*nr)
			rows := make([]float32, lines*dim)
			for j := range lines {
				old.Vector(int32(q*nr+j), rows[j*dim:(j+1)*dim])
			}
			simd.PackPanels(g.data[q*nr*dim:(q+1)*nr*dim], rows, dim, 1, 0, lines, 0, dim, nr)
		})
		g.width, g.repacked = nr, true
	}
	return g, nil
}

// Len is the number of vectors.
func (g *Gallery) Len() int { return g.n }

// Dim is their dimension.
func (g *Gallery) Dim() int { return g.dim }

// Repacked reports whether NewGallery repacked the data for this machine's
// kernel (a copy in memory) rather than using it in place.
func (g *Gallery) Repacked() bool { return g.repacked }

// Vector returns row's vector, unpacked into dst (reused when its capacity
// suffices). It panics when row is out of range.
func (g *Gallery) Vector(row int32, dst []float32) []float32 {
	if row < 0 || int(row) >= g.n {
		panic(fmt.Sprintf("search: row %d of a gallery of %d", row, g.n))
	}
	if cap(dst) < g.dim {
		dst = make([]float32, g.dim)
	}
	dst = dst[:g.dim]
	w := g.width
	q, j := int(row)/w, int(row)%w
	panel := g.data[q*w*g.dim : (q+1)*w*g.dim]
	for p := range dst {
		dst[p] = panel[p*w+j]
	}
	return dst
}

// gosched is how many panels a worker scores between yields (a few hundred
// microseconds): a goroutine that runs on for 10 ms gets preemption
// signals, which keep failing (and repeating) while it is inside assembly.
const gosched = 64

// Search returns, for each of the queries (q×dim, row-major), the best k
// rows by dot product, highest first, equal scores by the lower row first
// (as metrics.Rank orders them); fewer than k when fewer rows are kept.
// keep (nil: every row) filters rows; it is called only for rows that
// would enter a query's current best k, from several goroutines at once.
// Scores are bit-identical to metrics.Rank's for the same vectors on the
// same machine.
//
// A query streams the gallery once, a panel at a time through the
// kernel's row form, on every core (memory-bound); more are packed into
// panels and scored as tiles against each gallery panel while it is in
// cache (compute-bound from a few dozen queries on, like a GEMM).
func (g *Gallery) Search(queries []float32, k int, keep func(row int32) bool) ([][]Hit, error) {
	d := g.dim
	if len(queries)%d != 0 {
		return nil, fmt.Errorf("search: %d query values are not a multiple of dimension %d", len(queries), d)
	}
	if k < 1 {
		return nil, fmt.Errorf("search: k = %d, want at least 1", k)
	}
	for i, v := range queries {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("search: query %d: value %d is %v", i/d, i%d, v)
		}
	}
	nq := len(queries) / d
	out := make([][]Hit, nq)
	if nq == 0 {
		return out, nil
	}
	kk := min(k, g.n) // no query keeps more than the gallery has
	kern := g.kern
	mr, nr := kern.MR, kern.NR
	// One query goes through the row kernel; more are packed into query
	// panels of mr rows, the last one only as wide as it needs to be when
	// the kernel has short tiles.
	rowMode := nq == 1
	full, last := nq/mr, nq%mr
	lastW := 0
	if last > 0 {
		lastW = mr
		if kern.ShortStep > 0 {
			lastW = min(simd.RoundUp(last, kern.ShortStep), mr)
		}
	}
	var qp []float32
	if !rowMode {
		qp = make([]float32, (full*mr+lastW)*d)
		simd.PackPanels(qp, queries, d, 1, 0, full*mr, 0, d, mr)
		if last > 0 {
			simd.PackPanels(qp[full*mr*d:], queries, d, 1, full*mr, last, 0, d, lastW)
		}
	}
	panels := (g.n + nr - 1) / nr
	// Tasks of 64 panels (4 MB at width 32, d 512) keep cores that another
	// process slows from holding the others up at the end.
	chunk := cmp.Or(g.chunk, gosched)
	workers := min(cmp.Or(g.workers, runtime.GOMAXPROCS(0)), (panels+chunk-1)/chunk)
	ss := make([]*scratch, max(workers, 1))
	parallel.Tasks(workers, (panels+chunk-1)/chunk, func(task, w int) {
		s := ss[w]
		if s == nil {
			s = g.getScratch(nq, kk, len(qp)/d)
			ss[w] = s
		}
		p1 := min((task+1)*chunk, panels)
		for p := task * chunk; p < p1; p++ {
			if p%gosched == 0 {
				runtime.Gosched()
			}
			b := g.data[p*nr*d : (p+1)*nr*d]
			base := int32(p * nr)
			cols := min(nr, g.n-p*nr)
			if rowMode {
				kern.Row(d, queries, b, s.scores[:nr])
				s.push(0, s.scores[:cols], base, keep)
				continue
			}
			for ip := range full {
				kern.Tile(d, qp[ip*mr*d:(ip+1)*mr*d], b, s.scores[ip*mr*nr:], nr, false)
			}
			if o := full * mr; lastW == mr {
				kern.Tile(d, qp[o*d:], b, s.scores[o*nr:], nr, false)
			} else if lastW > 0 {
				kern.Short(lastW, d, qp[o*d:], b, s.scores[o*nr:], nr, false)
			}
			for i := range nq {
				s.push(i, s.scores[i*nr:i*nr+cols], base, keep)
			}
		}
	})
	// Each query's best over the workers' heaps: the order is total
	// (score, then row), so how the panels were split does not matter.
	all := make([]Hit, 0, nq*kk)
	var cand []Hit
	for i := range nq {
		cand = cand[:0]
		for _, s := range ss {
			if s != nil {
				cand = append(cand, s.heap[i*kk:i*kk+int(s.size[i])]...)
			}
		}
		slices.SortFunc(cand, func(a, b Hit) int {
			if a.Score != b.Score {
				return cmp.Compare(b.Score, a.Score)
			}
			return cmp.Compare(a.Row, b.Row)
		})
		start := len(all)
		all = append(all, cand[:min(kk, len(cand))]...)
		out[i] = all[start:len(all):len(all)]
	}
	for _, s := range ss {
		if s != nil {
			g.pool.Put(s)
		}
	}
	return out, nil
}

// scratch is one worker's state for a Search: per query a bounded heap of
// its best k hits so far, whose root is the worst of them, and the score
// buffer the kernel writes.
type scratch struct {
	k      int
	heap   []Hit   // query i's heap is heap[i*k : i*k+size[i]]
	size   []int32 // per query
	scores []float32
}

// getScratch returns a scratch for nq queries, k hits each and rows query
// rows of tile scores (0 in row mode), reusing a pooled one.
func (g *Gallery) getScratch(nq, k, rows int) *scratch {
	s, _ := g.pool.Get().(*scratch)
	if s == nil {
		s = &scratch{}
	}
	s.k = k
	s.heap = grow(s.heap, nq*k)
	s.size = grow(s.size, nq)
	clear(s.size)
	s.scores = grow(s.scores, max(rows, 1)*g.kern.NR)
	return s
}

// grow returns x resized to n, reallocated when its capacity is short.
func grow[T any](x []T, n int) []T {
	if cap(x) < n {
		return make([]T, n)
	}
	return x[:n]
}

// push offers query i the scores of rows base, base+1, ...; a worker's rows
// arrive in increasing order, so a row scoring the same as the heap's worst
// ranks after it and stays out.
func (s *scratch) push(i int, row []float32, base int32, keep func(int32) bool) {
	k := s.k
	h := s.heap[i*k : (i+1)*k]
	n := int(s.size[i])
	j := 0
	for ; n < k && j < len(row); j++ {
		r := base + int32(j)
		if keep != nil && !keep(r) {
			continue
		}
		h[n] = Hit{r, row[j]}
		siftUp(h, n)
		n++
	}
	s.size[i] = int32(n)
	if j == len(row) {
		return
	}
	// Full: only scores above the worst enter, which after the first
	// panels is rare, so the loop is a predictable compare.
	worst := h[0].Score
	for ; j < len(row); j++ {
		v := row[j]
		if !(v > worst) {
			continue
		}
		r := base + int32(j)
		if keep != nil && !keep(r) {
			continue
		}
		h[0] = Hit{r, v}
		siftDown(h)
		worst = h[0].Score
	}
}

// worse reports whether a ranks after b.
func worse(a, b Hit) bool { return a.Score < b.Score || (a.Score == b.Score && a.Row > b.Row) }

func siftUp(h []Hit, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !worse(h[i], h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func siftDown(h []Hit) {
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		w := l
		if r := l + 1; r < len(h) && worse(h[r], h[l]) {
			w = r
		}
		if !worse(h[w], h[i]) {
			return
		}
		h[i], h[w] = h[w], h[i]
		i = w
	}
}
