package cpu

import (
	"sync"
	"unsafe"

	"github.com/clipline/clipline/internal/simd"
)

// The bf16 mode (device cpu,bf16) multiplies bf16 operands with fp32
// accumulation, as the CUDA backend's bf16 mode does: Linear and LinearAdd
// whose inner and output widths both exceed skinnyDim, and attention's
// q·kᵀ and P·v at head size 64 (where CUDA uses its tensor-core kernels),
// round both operands to bf16 (nearest even) as they are packed for the
// micro-kernel. Everything else (layer norm, softmax and their statistics,
// the elementwise operations, LoRA's rank-r products, every backward
// product) stays fp32.
//
// A Linear weight is converted and packed once, on its first product, and
// the packed form is kept (keyed by the weight's storage) for later ones:
// inference reuses its weights for every batch. Writes through the
// backend (Upload, Copy, Zero, Scale, AddScaled, AdamW) drop the packed
// forms they overlap; writes through Data bypass the backend and are not
// seen, so code that changes weights that way must not use this mode.
// The stages use it for inference only (embed, serve, clip.Load); training
// rejects it (CPU training is fp32).

// skinnyDim: a product whose inner or output width is at most this stays
// fp32 (the CUDA bf16 mode's rule: LoRA's rank-r products).
const skinnyDim = 32

// bf16HeadSize is the head size whose attention products run in bf16 (the
// CUDA bf16 mode's tensor-core attention applies to it only).
const bf16HeadSize = 64

type bf16Mode struct {
	kern *panelKernel[uint32]

	mu      sync.Mutex
	weights map[*float32]*packedWeight
}

// packedWeight is the packed bf16 form of the weight w (as B = wᵀ, k×n).
// The entry holds w itself, so its storage cannot be freed and reused by
// another buffer while the entry exists.
type packedWeight struct {
	w      []float32
	k, n   int
	packed *packedB[uint32]
}

// NewBF16 returns a CPU backend in bf16 mode with the best kernels (see
// simd.SelectedBF16): VDPBF16PS on CPUs with avx512_bf16, elsewhere the
// AVX2 kernel on the same panels, which is no faster than fp32.
func NewBF16(workers int) *Backend {
	return NewBF16Level(workers, simd.Selected(), simd.SelectedBF16())
}

// NewBF16Level is NewBF16 with the fp32 kernels and vector loops of level
// l and the bf16 kernel of level bl (one of simd.BF16Available()).
func NewBF16Level(workers int, l, bl simd.Level) *Backend {
	be := NewLevel(workers, l)
	be.bf = &bf16Mode{kern: bf16Kernel(simd.BF16KernelFor(bl)), weights: map[*float32]*packedWeight{}}
	return be
}

// BF16 reports whether the backend is in bf16 mode.
func (be *Backend) BF16() bool { return be.bf != nil }

// linearBF16 says whether a Linear of inner size K and output width N runs
// in bf16.
func (be *Backend) linearBF16(K, N int) bool { return be.bf != nil && min(K, N) > skinnyDim }

// linearPacked computes out (+)= x·wᵀ (+ bias) in bf16 on w's packed form.
func (be *Backend) linearPacked(o, x, wd, bias []float32, M, K, N int, accumulate bool) {
	pb := be.bf.packed(be.workers, wd, K, N)
	gemmRun(be.workers, be.bf.kern, M, N, K, matrix{x, K, 1}, matrix{}, pb, o, N, accumulate, bias)
}

// packed returns the packed form of weight wd (N×K, used as B = wdᵀ),
// packing it on first use.
func (m *bf16Mode) packed(workers int, wd []float32, K, N int) *packedB[uint32] {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := &wd[0]
	if e := m.weights[key]; e != nil && len(e.w) == len(wd) && e.k == K && e.n == N {
		return e.packed
	}
	e := &packedWeight{w: wd, k: K, n: N, packed: m.kern.packAll(workers, matrix{wd, 1, K}, K, N)}
	m.weights[key] = e
	return e.packed
}

// wrote drops the packed weights that overlap d (a write through the
// backend).
func (be *Backend) wrote(d []float32) {
	if be.bf == nil || len(d) == 0 {
		return
	}
	lo, hi := span(d)
	m := be.bf
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, e := range m.weights {
		if elo, ehi := span(e.w); elo < hi && lo < ehi {
			delete(m.weights, key)
		}
	}
}

// span is the address range of d's storage.
func span(d []float32) (lo, hi uintptr) {
	lo = uintptr(unsafe.Pointer(unsafe.SliceData(d)))
	return lo, lo + 4*uintptr(len(d))
}

// attentionBF16 says whether attention of head size hs runs in bf16.
func (be *Backend) attentionBF16(hs int) bool { return be.bf != nil && hs == bf16HeadSize }

// gemmIn is gemm in bf16 when bf16 is set (A and B both packed from fp32
// here), else fp32.
func (be *Backend) gemmIn(bf16 bool, m, n, k int, a, b matrix, c []float32, ldc int, accumulate bool, bias []float32) {
	if bf16 {
		gemmRun(be.workers, be.bf.kern, m, n, k, a, b, nil, c, ldc, accumulate, bias)
		return
	}
	be.gemm(m, n, k, a, b, c, ldc, accumulate, bias)
}
