package cpu

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/clipline/clipline/internal/parallel"
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

// microKernel computes c[i*ldc+j] += Σ_p a[p*mr+i]·b[p*nr+j] for one full
// mr×nr tile from packed panels a (kc×mr) and b (kc×nr).
type microKernel struct {
	name   string
	mr, nr int
	fn     func(kc int, a, b, c []float32, ldc int)
}

// goKernel is the portable micro-kernel; defaultKernel is replaced at init
// by an assembly kernel where the CPU supports one, unless the environment
// variable CLIPLINE_CPU_KERNEL names another (go, avx2, avx512), for
// debugging and benchmarks; "go" also turns off the other assembly
// routines.
var (
	goKernel      = microKernel{"go-4x4", 4, 4, kernelGo4x4}
	defaultKernel = &goKernel
)

func init() {
	ks := availableKernels()
	defaultKernel = ks[len(ks)-1]
	want := os.Getenv("CLIPLINE_CPU_KERNEL")
	if want == "" {
		return
	}
	if want == "go" {
		// Pure Go throughout: the vector routines go too, so that the
		// fallbacks of other architectures can be tested here.
		disableAsm()
	}
	for _, k := range availableKernels() {
		if strings.HasPrefix(k.name, want+"-") {
			defaultKernel = k
			return
		}
	}
	fmt.Fprintf(os.Stderr, "cpu: CLIPLINE_CPU_KERNEL=%s is not available here; using %s\n", want, defaultKernel.name)
}

// KernelName names the GEMM micro-kernel in use (for logs and benchmarks).
func (be *Backend) KernelName() string {
	if be.kern != nil {
		return be.kern.name
	}
	return defaultKernel.name
}

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
	if kern == nil {
		kern = defaultKernel
	}
	mr, nr := kern.mr, kern.nr
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
	nc := roundUp((n+nBlocks-1)/nBlocks, nr)
	nBlocks = (n + nc - 1) / nc
	// Flops per task should dwarf goroutine start-up (~µs): keep small
	// products on fewer tasks.
	for mGroups > 1 && 2*m*n*k/(nBlocks*mGroups) < 1<<18 {
		mGroups--
	}
	// Row groups are a multiple of mr rows so only the last one has a
	// ragged edge.
	mg := roundUp((m+mGroups-1)/mGroups, mr)
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
							kern.fn(kc, ap, bp, c[off:], ldc)
							continue
						}
						// Ragged edge: full tile into scratch, add the valid part.
						clear(tile)
						kern.fn(kc, ap, bp, tile, nr)
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

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// packA copies A rows [i0,i0+mc) × columns [p0,p0+kc) into mr-row panels:
// panel r holds dst[r*mr*kc + p*mr + ii] = A(i0+r*mr+ii, p0+p), with rows
// past mc zero-filled.
func packA(dst []float32, a matrix, i0, mc, p0, kc, mr int) {
	packPanels(dst, a.d, a.rs, a.cs, i0, mc, p0, kc, mr)
}

// packB copies B rows [p0,p0+kc) × columns [j0,j0+nc) into nr-column
// panels: panel q holds dst[q*nr*kc + p*nr + jj] = B(p0+p, j0+q*nr+jj),
// with columns past nc zero-filled.
func packB(dst []float32, b matrix, p0, kc, j0, nc, nr int) {
	packPanels(dst, b.d, b.cs, b.rs, j0, nc, p0, kc, nr)
}

// packPanels is packA and packB in one: "lines" are A's rows or B's
// columns, element (l, p) is d[l*ls + p*ps], and panel q of width w holds
// dst[q*w*kc + p*w + j] = element(l0+q*w+j, p0+p), zero past n lines.
func packPanels(dst, d []float32, ls, ps, l0, n, p0, kc, w int) {
	var srcs [32][]float32
	for q := 0; q*w < n; q++ {
		panel := dst[q*w*kc : (q+1)*w*kc]
		lines := min(w, n-q*w)
		base := l0 + q*w
		switch {
		case ps == 1 && w <= len(srcs):
			// Lines contiguous along p (A = in, B = Wᵀ): gather one
			// element from each line per p, writing the panel in order.
			for j := range lines {
				srcs[j] = d[(base+j)*ls+p0 : (base+j)*ls+p0+kc]
			}
			if lines == w {
				p := packTransVec(panel, d, base*ls+p0, ls, w, kc)
				gatherFull(panel, srcs[:w], p, kc)
			} else {
				for p := range kc {
					out := panel[p*w : p*w+lines]
					for j := range out {
						out[j] = srcs[j][p]
					}
				}
			}
		case ls == 1:
			// Lines contiguous across l (A = dOutᵀ, B = W or in): copies,
			// through a fixed-size temporary so that they compile to
			// inline vector moves rather than memmove calls.
			for p := range kc {
				src := d[(p0+p)*ps+base : (p0+p)*ps+base+lines]
				out := panel[p*w : p*w+lines]
				switch {
				case lines == 32:
					v := *(*[32]float32)(src)
					*(*[32]float32)(out) = v
				case lines == 16:
					v := *(*[16]float32)(src)
					*(*[16]float32)(out) = v
				case lines == 12:
					v := *(*[12]float32)(src)
					*(*[12]float32)(out) = v
				case lines == 6:
					v := *(*[6]float32)(src)
					*(*[6]float32)(out) = v
				case lines == 4:
					v := *(*[4]float32)(src)
					*(*[4]float32)(out) = v
				default:
					copy(out, src)
				}
			}
		default:
			for p := range kc {
				for j := range lines {
					panel[p*w+j] = d[(base+j)*ls+(p0+p)*ps]
				}
			}
		}
		if lines < w {
			for p := range kc {
				clear(panel[p*w+lines : p*w+w])
			}
		}
	}
}

// gatherFull sets panel[p*w+j] = srcs[j][p] for all w = len(srcs) lines
// and p in [p0, kc), four values of p at a time so that each line is read
// 16 bytes at once.
func gatherFull(panel []float32, srcs [][]float32, p0, kc int) {
	w := len(srcs)
	p := p0
	for ; p+4 <= kc; p += 4 {
		out := panel[p*w : p*w+4*w]
		for j, s := range srcs {
			v := (*[4]float32)(s[p : p+4])
			out[j] = v[0]
			out[w+j] = v[1]
			out[2*w+j] = v[2]
			out[3*w+j] = v[3]
		}
	}
	for ; p < kc; p++ {
		out := panel[p*w : p*w+w]
		for j, s := range srcs {
			out[j] = s[p]
		}
	}
}

// kernelGo4x4 is the portable micro-kernel: 16 accumulators, which the Go
// compiler keeps in registers; slices are re-sliced to exact lengths so
// the loop body has no bounds checks.
func kernelGo4x4(kc int, a, b, c []float32, ldc int) {
	var c00, c01, c02, c03 float32
	var c10, c11, c12, c13 float32
	var c20, c21, c22, c23 float32
	var c30, c31, c32, c33 float32
	a = a[:4*kc]
	b = b[:4*kc]
	for p := 0; p < len(a) && p < len(b); p += 4 {
		aa := a[p : p+4 : p+4]
		bb := b[p : p+4 : p+4]
		b0, b1, b2, b3 := bb[0], bb[1], bb[2], bb[3]
		a0 := aa[0]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		a1 := aa[1]
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		a2 := aa[2]
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		a3 := aa[3]
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	r := c[0:4:4]
	r[0] += c00
	r[1] += c01
	r[2] += c02
	r[3] += c03
	r = c[ldc : ldc+4 : ldc+4]
	r[0] += c10
	r[1] += c11
	r[2] += c12
	r[3] += c13
	r = c[2*ldc : 2*ldc+4 : 2*ldc+4]
	r[0] += c20
	r[1] += c21
	r[2] += c22
	r[3] += c23
	r = c[3*ldc : 3*ldc+4 : 3*ldc+4]
	r[0] += c30
	r[1] += c31
	r[2] += c32
	r[3] += c33
}
