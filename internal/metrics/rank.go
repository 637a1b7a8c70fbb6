package metrics

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/clipline/clipline/internal/parallel"
	"github.com/clipline/clipline/internal/simd"
)

// Relevance lists, for each query, the gallery items relevant to it
// (compressed rows: query q's items are Items[Offsets[q]:Offsets[q+1]]).
type Relevance struct {
	Offsets []int32
	Items   []int32
}

// Len is the number of queries.
func (r Relevance) Len() int { return max(len(r.Offsets)-1, 0) }

// Of returns query q's relevant items.
func (r Relevance) Of(q int) []int32 { return r.Items[r.Offsets[q]:r.Offsets[q+1]] }

// Input is what Rank scores: caption and image embeddings (row-major, Dim
// floats each) and which images are relevant to each caption (T2I) and which
// captions to each image (I2T).
type Input struct {
	Dim      int
	Captions []float32 // M×Dim: text-to-image queries, image-to-text gallery
	Images   []float32 // N×Dim: image-to-text queries, text-to-image gallery
	T2I      Relevance // M queries over N images
	I2T      Relevance // N queries over M captions
}

// Options tune Rank.
type Options struct {
	TopK    int // keep each query's best TopK gallery items (0: none)
	Workers int // goroutines (0: GOMAXPROCS)
	// Block sizes (0: defaults); captions are rounded up to a multiple of 12,
	// images to a multiple of 32.
	CaptionBlock, ImageBlock int
}

// Direction holds one direction's metrics, averaged over the queries that
// have at least one relevant item.
type Direction struct {
	R1, R5, R10, MRR, NDCG10 float64
	Queries                  int // queries averaged over
	NoRelevant               int // queries without any relevant item, left out of the averages
	// FirstRank is each query's rank (1-based) of its best-ranked relevant
	// item, 0 for queries without one.
	FirstRank []int32
	Top       TopK // filled when Options.TopK > 0
}

// TopK holds each query's best K gallery items, best first: query q's are
// Items[q*K:(q+1)*K] with Scores alongside; -1 pads when the gallery is
// smaller than K.
type TopK struct {
	K      int
	Items  []int32
	Scores []float32
}

// Result is both directions' metrics.
type Result struct {
	T2I, I2T Direction
	Kernel   string // which score kernel ran: avx512, avx2 or go
}

// RSum is the sum of the six recalls (as fractions).
func (r Result) RSum() float64 {
	return r.T2I.R1 + r.T2I.R5 + r.T2I.R10 + r.I2T.R1 + r.I2T.R5 + r.I2T.R10
}

// ndcgDepth is the cut-off of NDCG@10; relevant items ranked below it are
// not tracked once known to be there.
const ndcgDepth = 10

// Rank computes Recall@1/5/10, MRR and NDCG@10 in both directions without
// building the score matrix.
//
// Scores are dot products (cosine similarities for unit vectors). A query's
// ranking orders gallery items by score, highest first; equal scores are
// ordered by gallery row, the lower row first. An item's rank is therefore
// 1 + the number of items that score higher, or score the same and come
// earlier.
//
// Method: pass 1 scores every (query, relevant item) pair and sorts each
// query's relevant items into ranking order. Pass 2 streams over blocks of
// captions × blocks of images, computing each block of scores once for both
// directions, and for each query counts the gallery items that beat each of
// its relevant items. Only the best relevant item needs an exact count (Recall,
// MRR); the others are followed while they can still be in the top 10 (NDCG).
// Memory is O(M·D + N·D + relevant pairs + queries·TopK).
func Rank(in Input, opt Options) (Result, error) {
	d := in.Dim
	if d <= 0 {
		return Result{}, errors.New("embedding dimension must be positive")
	}
	if len(in.Captions)%d != 0 || len(in.Images)%d != 0 {
		return Result{}, fmt.Errorf("embedding arrays are not multiples of dimension %d", d)
	}
	m, n := len(in.Captions)/d, len(in.Images)/d
	if in.T2I.Len() != m || in.I2T.Len() != n {
		return Result{}, fmt.Errorf("relevance lists cover %d captions and %d images, embeddings %d and %d", in.T2I.Len(), in.I2T.Len(), m, n)
	}
	if err := checkRelevance(in.T2I, n, "image"); err != nil {
		return Result{}, err
	}
	if err := checkRelevance(in.I2T, m, "caption"); err != nil {
		return Result{}, err
	}
	if err := checkFinite(in.Captions, d, "caption"); err != nil {
		return Result{}, err
	}
	if err := checkFinite(in.Images, d, "image"); err != nil {
		return Result{}, err
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	bc := simd.RoundUp(cmp.Or(opt.CaptionBlock, 240), blockRows)
	bg := simd.RoundUp(cmp.Or(opt.ImageBlock, 256), blockCols)
	kern := simd.KernelFor(scoreLevel)
	mr, nr := kern.MR, kern.NR

	// Images packed once into panels of nr; a caption block is packed by
	// the worker that takes it.
	imgPanels := make([]float32, simd.RoundUp(n, nr)*d)
	parallel.Tasks(workers, (n+nr-1)/nr, func(p, _ int) {
		simd.PackPanels(imgPanels[p*nr*d:(p+1)*nr*d], in.Images, d, 1, p*nr, min(nr, n-p*nr), 0, d, nr)
	})
	score := func(c, g int, buf *[blockCols]float32) float32 {
		p := g / nr
		kern.Row(d, in.Captions[c*d:(c+1)*d], imgPanels[p*nr*d:(p+1)*nr*d], buf[:nr])
		return buf[g%nr]
	}

	// Pass 1: each query's relevant items, scored and sorted.
	t2i := newDirState(in.T2I)
	i2t := newDirState(in.I2T)
	parallel.Tasks(workers, m, func(c, _ int) {
		var buf [blockCols]float32
		t2i.prepare(c, func(g int32) float32 { return score(c, int(g), &buf) })
	})
	parallel.Tasks(workers, n, func(g, _ int) {
		var buf [blockCols]float32
		i2t.prepare(g, func(c int32) float32 { return score(int(c), g, &buf) })
	})

	k := opt.TopK
	t2iCnt, t2iAlive := t2i.initCounts()
	var t2iTop *heaps
	if k > 0 {
		t2iTop = newHeaps(m, k)
	}

	// Pass 2. Workers take caption blocks; text-to-image state belongs to
	// the block's worker, image-to-text counts and heaps are per worker and
	// summed (merged) afterwards.
	type worker struct {
		cnt, alive []int32
		top        *heaps
	}
	ws := make([]*worker, workers)
	var next atomic.Int64
	nblocks := (m + bc - 1) / bc
	var wg sync.WaitGroup
	for w := range workers {
		wk := &worker{}
		wk.cnt, wk.alive = i2t.initCounts()
		if k > 0 {
			wk.top = newHeaps(n, k)
		}
		ws[w] = wk
		wg.Add(1)
		go func() {
			defer wg.Done()
			ap := make([]float32, bc*d)
			s := make([]float32, bc*bg)
			st := make([]float32, bg*bc)
			cand := make([]int32, max(bc, bg))
			for {
				blk := int(next.Add(1)) - 1
				if blk >= nblocks {
					return
				}
				c0 := blk * bc
				c1 := min(c0+bc, m)
				rows := c1 - c0
				apn := (rows + mr - 1) / mr
				simd.PackPanels(ap, in.Captions, d, 1, c0, rows, 0, d, mr)
				for g0 := 0; g0 < n; g0 += bg {
					// Yield about once a millisecond: a goroutine that runs
					// on for 10ms gets preemption signals, which keep
					// failing (and repeating) while it is inside assembly.
					runtime.Gosched()
					g1 := min(g0+bg, n)
					cols := g1 - g0
					bpn := (cols + nr - 1) / nr
					for ip := range apn {
						a := ap[ip*mr*d : (ip+1)*mr*d]
						for jp := range bpn {
							p := g0/nr + jp
							kern.Tile(d, a, imgPanels[p*nr*d:(p+1)*nr*d], s[ip*mr*bg+jp*nr:], bg, false)
						}
					}
					for c := c0; c < c1; c++ {
						row := s[(c-c0)*bg : (c-c0)*bg+cols]
						t2i.count(c, row, int32(g0), t2iCnt, t2iAlive, cand)
						if t2iTop != nil {
							t2iTop.push(c, row, int32(g0))
						}
					}
					transpose(st, s, rows, cols, bg, bc)
					for g := g0; g < g1; g++ {
						row := st[(g-g0)*bc : (g-g0)*bc+rows]
						i2t.count(g, row, int32(c0), wk.cnt, wk.alive, cand)
						if wk.top != nil {
							wk.top.push(g, row, int32(c0))
						}
					}
				}
			}
		}()
	}
	wg.Wait()

	i2tCnt := ws[0].cnt
	for _, wk := range ws[1:] {
		for i, c := range wk.cnt {
			i2tCnt[i] += c
		}
	}
	res := Result{Kernel: scoreLevel.String(), T2I: t2i.metrics(t2iCnt), I2T: i2t.metrics(i2tCnt)}
	if k > 0 {
		res.T2I.Top = t2iTop.sorted()
		all := ws[0].top
		for _, wk := range ws[1:] {
			all.merge(wk.top)
		}
		res.I2T.Top = all.sorted()
	}
	return res, nil
}

func checkRelevance(r Relevance, galleryLen int, what string) error {
	if len(r.Offsets) == 0 || r.Offsets[0] != 0 || int(r.Offsets[len(r.Offsets)-1]) != len(r.Items) {
		return errors.New("malformed relevance offsets")
	}
	for q := range r.Len() {
		if r.Offsets[q+1] < r.Offsets[q] {
			return errors.New("malformed relevance offsets")
		}
		items := r.Of(q)
		for i, g := range items {
			if g < 0 || int(g) >= galleryLen {
				return fmt.Errorf("query %d: relevant %s %d out of range", q, what, g)
			}
			if i > 0 && items[i-1] == g {
				return fmt.Errorf("query %d: relevant %s %d listed twice", q, what, g)
			}
		}
	}
	return nil
}

func checkFinite(x []float32, d int, what string) error {
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%s %d: embedding value %d is %v", what, i/d, i%d, v)
		}
	}
	return nil
}

// transpose writes the rows×cols block src (stride ls) into dst (stride ld)
// transposed, in 8×8 tiles to stay in cache.
func transpose(dst, src []float32, rows, cols, ls, ld int) {
	const t = 8
	for i0 := 0; i0 < rows; i0 += t {
		i1 := min(i0+t, rows)
		for j0 := 0; j0 < cols; j0 += t {
			j1 := min(j0+t, cols)
			for i := i0; i < i1; i++ {
				srow := src[i*ls : i*ls+j1]
				for j := j0; j < j1; j++ {
					dst[j*ld+i] = srow[j]
				}
			}
		}
	}
}

// dirState is one direction's relevant items in ranking order, per query.
type dirState struct {
	rel Relevance
	thr []float32 // score of each relevant item
	idx []int32   // the relevant items, per query sorted by (score desc, index asc)
}

func newDirState(rel Relevance) *dirState {
	return &dirState{rel: rel, thr: make([]float32, len(rel.Items)), idx: slices.Clone(rel.Items)}
}

func (s *dirState) prepare(q int, score func(int32) float32) {
	lo, hi := s.rel.Offsets[q], s.rel.Offsets[q+1]
	type item struct {
		g int32
		v float32
	}
	items := make([]item, 0, hi-lo)
	for _, g := range s.idx[lo:hi] {
		items = append(items, item{g, score(g)})
	}
	slices.SortFunc(items, func(a, b item) int {
		if a.v != b.v {
			return cmp.Compare(b.v, a.v)
		}
		return cmp.Compare(a.g, b.g)
	})
	for i, it := range items {
		s.idx[int(lo)+i], s.thr[int(lo)+i] = it.g, it.v
	}
}

// initCounts returns zeroed per-item counts and, per query, how many of its
// relevant items (a prefix in ranking order) are still followed.
func (s *dirState) initCounts() (cnt, alive []int32) {
	cnt = make([]int32, len(s.idx))
	alive = make([]int32, s.rel.Len())
	for q := range alive {
		alive[q] = s.rel.Offsets[q+1] - s.rel.Offsets[q]
	}
	return cnt, alive
}

// count adds, for query q, the gallery items of row (scores of items base,
// base+1, ...) that beat each followed relevant item.
func (s *dirState) count(q int, row []float32, base int32, cnt, alive, cand []int32) {
	a := alive[q]
	if a == 0 {
		return
	}
	off := s.rel.Offsets[q]
	thr := s.thr[off : off+a]
	idx := s.idx[off : off+a]
	cn := cnt[off : off+a]
	if a == 1 {
		// Only the best relevant item is followed (the common case once the
		// others have left the top 10): a plain branch-free count, where
		// items before it in row order also win ties.
		t := thr[0]
		split := min(max(int(idx[0]-base), 0), len(row))
		n := 0
		for _, v := range row[:split] {
			n += b2i(v >= t)
		}
		for _, v := range row[split:] {
			n += b2i(v > t)
		}
		cn[0] += int32(n)
		return
	}
	low := thr[a-1]
	// Branch-free compaction of the candidates that can beat any followed
	// item: for random scores about half pass, which would defeat a branch
	// predictor.
	nc := 0
	cand = cand[:len(row)]
	for j, v := range row {
		cand[nc] = int32(j)
		nc += b2i(v >= low)
	}
	for _, j := range cand[:nc] {
		v, g := row[j], base+j
		// Relevant items are in ranking order, so an item that does not beat
		// one cannot beat those before it.
		for r := a - 1; r >= 0; r-- {
			if v > thr[r] || (v == thr[r] && g < idx[r]) {
				cn[r]++
			} else {
				break
			}
		}
	}
	for a > 1 && cn[a-1] >= ndcgDepth {
		a--
	}
	alive[q] = a
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// metrics turns final counts into the direction's averages.
func (s *dirState) metrics(cnt []int32) Direction {
	var d Direction
	nq := s.rel.Len()
	d.FirstRank = make([]int32, nq)
	var idcg [ndcgDepth + 1]float64
	for i := 1; i <= ndcgDepth; i++ {
		idcg[i] = idcg[i-1] + 1/math.Log2(float64(i+1))
	}
	for q := range nq {
		lo, hi := s.rel.Offsets[q], s.rel.Offsets[q+1]
		if lo == hi {
			d.NoRelevant++
			continue
		}
		d.Queries++
		first := cnt[lo] + 1
		d.FirstRank[q] = first
		if first <= 1 {
			d.R1++
		}
		if first <= 5 {
			d.R5++
		}
		if first <= 10 {
			d.R10++
		}
		d.MRR += 1 / float64(first)
		var dcg float64
		for _, c := range cnt[lo:hi] {
			if c < ndcgDepth {
				dcg += 1 / math.Log2(float64(c+2)) // rank c+1
			}
		}
		d.NDCG10 += dcg / idcg[min(int(hi-lo), ndcgDepth)]
	}
	if d.Queries > 0 {
		q := float64(d.Queries)
		d.R1, d.R5, d.R10, d.MRR, d.NDCG10 = d.R1/q, d.R5/q, d.R10/q, d.MRR/q, d.NDCG10/q
	}
	return d
}

// heaps keeps, per query, the best k (score, item) pairs in a min-heap whose
// root is the worst kept pair in ranking order.
type heaps struct {
	k      int
	size   []int32
	scores []float32
	items  []int32
}

func newHeaps(queries, k int) *heaps {
	return &heaps{k: k, size: make([]int32, queries), scores: make([]float32, queries*k), items: make([]int32, queries*k)}
}

// worse reports whether (v1, g1) ranks after (v2, g2).
func worse(v1 float32, g1 int32, v2 float32, g2 int32) bool {
	return v1 < v2 || (v1 == v2 && g1 > g2)
}

func (h *heaps) push(q int, row []float32, base int32) {
	sc := h.scores[q*h.k : (q+1)*h.k]
	it := h.items[q*h.k : (q+1)*h.k]
	n := int(h.size[q])
	j := 0
	for ; n < h.k && j < len(row); j++ {
		sc[n], it[n] = row[j], base+int32(j)
		n++
		siftUp(sc, it, n-1)
	}
	h.size[q] = int32(n)
	if j == len(row) {
		return
	}
	// The heap is full: only scores at or above its worst can enter, which
	// after the first blocks is rare, so the loop is a predictable compare.
	worst := sc[0]
	for ; j < len(row); j++ {
		v := row[j]
		if v < worst {
			continue
		}
		g := base + int32(j)
		if worse(v, g, sc[0], it[0]) {
			continue
		}
		sc[0], it[0] = v, g
		siftDown(sc, it, n)
		worst = sc[0]
	}
}

func siftUp(sc []float32, it []int32, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !worse(sc[i], it[i], sc[p], it[p]) {
			return
		}
		sc[i], sc[p] = sc[p], sc[i]
		it[i], it[p] = it[p], it[i]
		i = p
	}
}

func siftDown(sc []float32, it []int32, n int) {
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		w := l
		if r := l + 1; r < n && worse(sc[r], it[r], sc[l], it[l]) {
			w = r
		}
		if !worse(sc[w], it[w], sc[i], it[i]) {
			return
		}
		sc[i], sc[w] = sc[w], sc[i]
		it[i], it[w] = it[w], it[i]
		i = w
	}
}

// merge adds o's pairs into h (same queries).
func (h *heaps) merge(o *heaps) {
	for q := range h.size {
		base := q * h.k
		for i := range int(o.size[q]) {
			h.pushOne(q, o.scores[base+i], o.items[base+i])
		}
	}
}

func (h *heaps) pushOne(q int, v float32, g int32) {
	sc := h.scores[q*h.k : (q+1)*h.k]
	it := h.items[q*h.k : (q+1)*h.k]
	n := int(h.size[q])
	if n < h.k {
		sc[n], it[n] = v, g
		h.size[q]++
		siftUp(sc, it, n)
		return
	}
	if worse(v, g, sc[0], it[0]) {
		return
	}
	sc[0], it[0] = v, g
	siftDown(sc, it, n)
}

// sorted returns the heaps as best-first lists, padded with -1.
func (h *heaps) sorted() TopK {
	t := TopK{K: h.k, Items: make([]int32, len(h.items)), Scores: make([]float32, len(h.scores))}
	for q := range h.size {
		n := int(h.size[q])
		sc := slices.Clone(h.scores[q*h.k : q*h.k+n])
		it := slices.Clone(h.items[q*h.k : q*h.k+n])
		// Pop the worst repeatedly, filling from the back.
		for m := n; m > 0; m-- {
			t.Scores[q*h.k+m-1], t.Items[q*h.k+m-1] = sc[0], it[0]
			sc[0], it[0] = sc[m-1], it[m-1]
			siftDown(sc, it, m-1)
		}
		for i := n; i < h.k; i++ {
			t.Items[q*h.k+i], t.Scores[q*h.k+i] = -1, float32(math.NaN())
		}
	}
	return t
}
