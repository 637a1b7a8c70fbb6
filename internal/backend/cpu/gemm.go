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

// KernelName names the GEMM micro-kernel in use (for logs and benchmarks).
func (be *Backend) KernelName() string { return be.kern.Name }

// matrix addresses element (i, j) at d[i*rs + j*cs], so a transpose is a
// swap of strides.
type matrix struct {
	d      []float32
	rs, cs int
}

type gemmScratch struct {
	a, b, tile []float32
}

// Scratch buffers live on a free list that, unlike a sync.Pool, survives
// garbage collections: reallocating ~1 MiB per GEMM after every GC made small
// GEMMs (attention) allocation-bound. The list holds at most as many
// buffers as GEMM tasks ever ran at once.
var (
	scratchMu   sync.Mutex
	scratchFree []*gemmScratch
)

func getScratch() *gemmScratch {
	scratchMu.Lock()
	defer scratchMu.Unlock()
	if n := len(scratchFree); n > 0 {
		s := scratchFree[n-1]
		scratchFree = scratchFree[:n-1]
		return s
	}
	return &gemmScratch{
		a:    make([]float32, mcBlock*kcBlock),
		b:    make([]float32, kcBlock*ncMax),
		tile: make([]float32, 16*64), // ≥ mr*nr of any kernel
	}
}

func putScratch(s *gemmScratch) {
	scratchMu.Lock()
	scratchFree = append(scratchFree, s)
	scratchMu.Unlock()
}

// gemm computes C[m×n] (row-major, leading dimension ldc) = A[m×k]·B[k×n],
// added to C when accumulate is true, else added to bias (broadcast over
// rows; nil means zero). C is never read when accumulate is false.
func (be *Backend) gemm(m, n, k int, a, b matrix, c []float32, ldc int, accumulate bool, bias []float32) {
	if m <= 0 || n <= 0 {
		return
	}
	kern := be.kern
	mr, nr := kern.MR, kern.NR
	// Column blocks of equal width (a multiple of nr) so tasks balance.
	nBlocks := (n + ncMax - 1) / ncMax
	mGroups := 1
	if nBlocks < be.workers {
		// Every worker needs a task. Splitting columns repacks A (m×k)
		// per extra block, splitting rows repacks B (k×n) per extra
		// group: split the side that makes the other operand's repacking
		// the cheaper one.
		if m < n {
			nBlocks = min(be.workers, (n+nr-1)/nr)
		} else {
			mGroups = (be.workers + nBlocks - 1) / nBlocks
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
	// K slices of equal depth: 1600 = 7×229 rather than 6×256 + 64.
	kcb := (k + kcBlock - 1) / kcBlock
	kcb = (k + kcb - 1) / max(kcb, 1)
	if tasks == 1 || 2*m*n*k < 1<<18 {
		be1 := *be
		be1.workers = 1
		be = &be1
	}

	parallel.Tasks(be.workers, tasks, func(task, _ int) {
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
		s := getScratch()
		defer putScratch(s)
		tile := s.tile[:mr*nr]
		for p0 := 0; p0 < k; p0 += kcb {
			kc := min(kcb, k-p0)
			packB(s.b, b, p0, kc, j0, ncb, nr)
			for ic := i0; ic < i0+mgb; ic += mcBlock {
				mc := min(mcBlock, i0+mgb-ic)
				packA(s.a, a, ic, mc, p0, kc, mr)
				for ir := 0; ir < mc; ir += mr {
					ap := s.a[ir*kc : ir*kc+mr*kc]
					mv := min(mr, mc-ir)
					for jr := 0; jr < ncb; jr += nr {
						bp := s.b[jr*kc : jr*kc+nr*kc]
						nv := min(nr, ncb-jr)
						off := (ic+ir)*ldc + j0 + jr
						if mv == mr && nv == nr {
							kern.Tile(kc, ap, bp, c[off:], ldc, true)
							continue
						}
						// Ragged edge: full tile into scratch, add the valid part.
						clear(tile)
						kern.Tile(kc, ap, bp, tile, nr, true)
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

// packA copies A rows [i0,i0+mc) × columns [p0,p0+kc) into mr-row panels:
// panel r holds dst[r*mr*kc + p*mr + ii] = A(i0+r*mr+ii, p0+p), with rows
// past mc zero-filled.
func packA(dst []float32, a matrix, i0, mc, p0, kc, mr int) {
	simd.PackPanels(dst, a.d, a.rs, a.cs, i0, mc, p0, kc, mr)
}

// packB copies B rows [p0,p0+kc) × columns [j0,j0+nc) into nr-column
// panels: panel q holds dst[q*nr*kc + p*nr + jj] = B(p0+p, j0+q*nr+jj),
// with columns past nc zero-filled.
func packB(dst []float32, b matrix, p0, kc, j0, nc, nr int) {
	simd.PackPanels(dst, b.d, b.cs, b.rs, j0, nc, p0, kc, nr)
}
