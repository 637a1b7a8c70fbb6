package cpu

import (
	"sync"

	"github.com/clipline/clipline/internal/parallel"
	"github.com/clipline/clipline/internal/simd"
)

// The SGEMM follows the BLIS/GotoBLAS structure: C is cut into tasks of
// whole column blocks (≤ ncMax wide) × row groups; inside a task, K is cut
// into kc-deep slices; each slice's B block is packed once into nr-wide
// panels (kept in L2) and each mc-row block of A into mr-tall panels, then
// the micro-kernel walks mr×nr tiles of C with its accumulators in
// registers. Packing makes the micro-kernel layout-free, so the three
// products Linear needs (in·Wᵀ, dOut·W, dOutᵀ·in) share one code path and
// differ only in the strides handed to the packers.
const (
	kcBlock = 256 // depth of a packed slice: A panel mr×256 + B panel 256×nr fit L1
	mcBlock = 96  // rows of A packed at once (multiple of 4 and 6)
	ncMax   = 768 // widest B block: 256×768×4 B = 768 KiB, within L2
)

// KernelName names the GEMM micro-kernel in use (for logs and benchmarks):
// in bf16 mode the bf16 kernel's name.
func (be *Backend) KernelName() string {
	if be.bf != nil {
		return be.bf.kern.name
	}
	return be.kern.Name
}

// matrix addresses element (i, j) at d[i*rs + j*cs], so a transpose is a
// swap of strides.
type matrix struct {
	d      []float32
	rs, cs int
}

// panelKernel is what the blocked GEMM needs of a micro-kernel whose
// panels hold elements of type E: float32 values, or uint32 bf16 pairs
// (two values of k per element).
type panelKernel[E float32 | uint32] struct {
	name   string
	mr, nr int
	kcMax  int // deepest K slice
	kAlign int // K slices are a multiple of this deep (2: a pair never straddles two)
	// depth is the number of panel elements per line for kc values of k.
	depth func(kc int) int
	// pack lays lines out as panels (simd.PackPanels's arguments).
	pack func(dst []E, d []float32, ls, ps, l0, n, p0, kc, w int)
	tile func(depth int, a, b []E, c []float32, ldc int, accumulate bool)
	pool *scratchPool[E]
}

// f32Kernel is the fp32 GEMM on simd kernel k.
func f32Kernel(k *simd.Kernel) *panelKernel[float32] {
	return &panelKernel[float32]{name: k.Name, mr: k.MR, nr: k.NR, kcMax: kcBlock, kAlign: 1,
		depth: func(kc int) int { return kc }, pack: simd.PackPanels, tile: k.Tile, pool: &f32Scratch}
}

// bf16Kernel is the bf16 GEMM on simd kernel k. Its K slices are twice as
// deep as fp32's: a pair panel of 512 values is as many bytes as an fp32
// panel of 256.
func bf16Kernel(k *simd.BF16Kernel) *panelKernel[uint32] {
	return &panelKernel[uint32]{name: k.Name, mr: k.MR, nr: k.NR, kcMax: 2 * kcBlock, kAlign: 2,
		depth: simd.BF16Depth, pack: simd.PackBF16Panels, tile: k.Tile, pool: &bf16Scratch}
}

// sliceDepth is the depth of the K slices of a k-deep product: equal
// slices (1600 = 7×229 rather than 6×256 + 64), a multiple of kAlign.
func (g *panelKernel[E]) sliceDepth(k int) int {
	n := max((k+g.kcMax-1)/g.kcMax, 1)
	return simd.RoundUp((k+n-1)/n, g.kAlign)
}

type gemmScratch[E float32 | uint32] struct {
	a, b []E
	tile []float32
}

// Scratch buffers live on a free list that, unlike a sync.Pool, survives
// garbage collections: reallocating ~1 MiB per GEMM after every GC made small
// GEMMs (attention) allocation-bound. The list holds at most as many
// buffers as GEMM tasks ever ran at once.
type scratchPool[E float32 | uint32] struct {
	mu   sync.Mutex
	free []*gemmScratch[E]
}

var (
	f32Scratch  scratchPool[float32]
	bf16Scratch scratchPool[uint32]
)

func (g *panelKernel[E]) getScratch() *gemmScratch[E] {
	p := g.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		s := p.free[n-1]
		p.free = p.free[:n-1]
		return s
	}
	d := g.depth(g.kcMax)
	return &gemmScratch[E]{
		a:    make([]E, mcBlock*d),
		b:    make([]E, d*ncMax),
		tile: make([]float32, 16*64), // ≥ mr*nr of any kernel
	}
}

func (g *panelKernel[E]) putScratch(s *gemmScratch[E]) {
	g.pool.mu.Lock()
	g.pool.free = append(g.pool.free, s)
	g.pool.mu.Unlock()
}

// packedB is a whole B operand packed once (a weight, in inference): for
// K slice s (of the kernel's sliceDepth), panels of all columns from
// data[off[s]:], as the GEMM would pack them.
type packedB[E float32 | uint32] struct {
	data []E
	off  []int
}

// packAll packs B (k×n) for kernel g, slices in parallel.
func (g *panelKernel[E]) packAll(workers int, b matrix, k, n int) *packedB[E] {
	kcb := g.sliceDepth(k)
	pb := &packedB[E]{}
	size := 0
	for p0 := 0; p0 < k; p0 += kcb {
		pb.off = append(pb.off, size)
		size += simd.RoundUp(n, g.nr) * g.depth(min(kcb, k-p0))
	}
	pb.data = make([]E, size)
	parallel.For(workers, len(pb.off), 1, func(_, lo, hi int) {
		for s := lo; s < hi; s++ {
			p0 := s * kcb
			g.pack(pb.data[pb.off[s]:], b.d, b.cs, b.rs, 0, n, p0, min(kcb, k-p0), g.nr)
		}
	})
	return pb
}

// gemm computes C[m×n] (row-major, leading dimension ldc) = A[m×k]·B[k×n]
// in fp32, added to C when accumulate is true, else added to bias
// (broadcast over rows; nil means zero). C is never read when accumulate
// is false.
func (be *Backend) gemm(m, n, k int, a, b matrix, c []float32, ldc int, accumulate bool, bias []float32) {
	gemmRun(be.workers, be.f32, m, n, k, a, b, nil, c, ldc, accumulate, bias)
}

// gemmRun is the blocked GEMM on kernel g; B comes from pre when it is not
// nil (packed by g.packAll for this k and n), else it is packed from b.
func gemmRun[E float32 | uint32](workers int, g *panelKernel[E], m, n, k int, a, b matrix, pre *packedB[E], c []float32, ldc int, accumulate bool, bias []float32) {
	if m <= 0 || n <= 0 {
		return
	}
	mr, nr := g.mr, g.nr
	// Column blocks of equal width (a multiple of nr) so tasks balance.
	nBlocks := (n + ncMax - 1) / ncMax
	mGroups := 1
	if nBlocks < workers {
		// Every worker needs a task. Splitting columns repacks A (m×k)
		// per extra block, splitting rows repacks B (k×n) per extra
		// group: split the side that makes the other operand's repacking
		// the cheaper one.
		if m < n {
			nBlocks = min(workers, (n+nr-1)/nr)
		} else {
			mGroups = (workers + nBlocks - 1) / nBlocks
		}
	}
	nc := simd.RoundUp((n+nBlocks-1)/nBlocks, nr)
	nBlocks = (n + nc - 1) / nc
	// Flops per task should dwarf goroutine start-up (~µs): keep small
	// products on fewer tasks.
	for mGroups > 1 && 2*m*n*k/(nBlocks*mGroups) < 1<<18 {
		mGroups--
	}
	// Row groups are a multiple of mr rows so only the last one has a
	// ragged edge.
	mg := simd.RoundUp((m+mGroups-1)/mGroups, mr)
	mGroups = (m + mg - 1) / mg
	tasks := nBlocks * mGroups
	kcb := g.sliceDepth(k)
	if tasks == 1 || 2*m*n*k < 1<<18 {
		workers = 1
	}

	parallel.Tasks(workers, tasks, func(task, _ int) {
		jb, ig := task%nBlocks, task/nBlocks
		j0, i0 := jb*nc, ig*mg
		ncb, mgb := min(nc, n-j0), min(mg, m-i0)
		if !accumulate {
			for i := i0; i < i0+mgb; i++ {
				row := c[i*ldc+j0 : i*ldc+j0+ncb]
				if bias != nil {
					copy(row, bias[j0:j0+ncb])
				} else {
					clear(row)
				}
			}
		}
		if k <= 0 {
			return
		}
		s := g.getScratch()
		defer g.putScratch(s)
		tile := s.tile[:mr*nr]
		for p0 := 0; p0 < k; p0 += kcb {
			kc := min(kcb, k-p0)
			d := g.depth(kc)
			bBlock := s.b
			if pre != nil {
				bBlock = pre.data[pre.off[p0/kcb]+j0*d:]
			} else {
				// B rows [p0,p0+kc) × columns [j0,j0+ncb) as nr-column
				// panels, columns past ncb zero-filled.
				g.pack(s.b, b.d, b.cs, b.rs, j0, ncb, p0, kc, nr)
			}
			for ic := i0; ic < i0+mgb; ic += mcBlock {
				mc := min(mcBlock, i0+mgb-ic)
				// A rows [ic,ic+mc) × columns [p0,p0+kc) as mr-row panels.
				g.pack(s.a, a.d, a.rs, a.cs, ic, mc, p0, kc, mr)
				for ir := 0; ir < mc; ir += mr {
					ap := s.a[ir*d : ir*d+mr*d]
					mv := min(mr, mc-ir)
					for jr := 0; jr < ncb; jr += nr {
						bp := bBlock[jr*d : jr*d+nr*d]
						nv := min(nr, ncb-jr)
						off := (ic+ir)*ldc + j0 + jr
						if mv == mr && nv == nr {
							g.tile(d, ap, bp, c[off:], ldc, true)
							continue
						}
						// Ragged edge: full tile into scratch, add the valid part.
						clear(tile)
						g.tile(d, ap, bp, tile, nr, true)
						for i := range mv {
							dst := c[off+i*ldc : off+i*ldc+nv]
							src := tile[i*nr : i*nr+nv]
							for j := range dst {
								dst[j] += src[j]
							}
						}
					}
				}
			}
		}
	})
}
