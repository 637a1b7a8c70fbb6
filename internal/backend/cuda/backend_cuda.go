//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/clipline/clipline/internal/backend"
)

// Backend is the CUDA implementation of backend.Backend. Operations queue
// work on one stream and return; Download, SumSquares and Sync wait. It is
// safe for concurrent use (operations are serialised), though one goroutine
// driving it is the intended use.
type Backend struct {
	opts    Options
	ordinal int
	name    string

	g *gpu
	k kernelSet

	mu     sync.Mutex
	pool   *pool
	args   [32]uint64
	nargs  int
	err    error // first asynchronous or launch error
	closed bool

	// fused: Linear adds its bias inside the product (cuBLASLt epilogue),
	// after New's check that it agrees with GEMM + add_bias_rows.
	fused     bool
	fusedNote string
	// tcAttention: in the bf16 modes, attention with head size 64 runs on
	// tensor cores (attn64_tc_*) unless CLIPLINE_CUDA_NO_TC_ATTENTION=1.
	tcAttention bool
	fusedMiss   error // the last shape the fused product could not do

	partials    uintptr // reduceMaxBlocks float64 partial sums of SumSquares
	hostPart    []float64
	manyPart    uintptr // SumSquaresMany's partial sums (manyCap bytes)
	manyCap     int
	manyHost    []float64
	manyDesc    uintptr // SumSquaresMany's buffer table (manyDescCap bytes)
	manyDescCap int

	host    map[unsafe.Pointer]int // page-locked host blocks (AllocHostBytes) and their sizes
	prof    *profiler              // per-op GPU time, with CLIPLINE_CUDA_PROFILE=1
	syncs   int64                  // host waits for the stream (Download, SumSquares, Sync, ...)
	scratch [2]scratchBuf          // bf16 copies of GEMM activation operands
}

// scratchBuf is a growable pool block.
type scratchBuf struct {
	ptr   uintptr
	bytes int
	// What the slot holds: the bf16 copy of elements [off, off+n) of a as
	// of a's write count gen (a nil: nothing reusable). q, k and v's
	// products share their input, so it is converted once, not three times.
	a      *allocation
	off, n int
	gen    uint64
}

// kernelSet holds the functions of kernels/clipline.cu.
type kernelSet struct {
	add, addScaled, scale, mul, actF, actB, addBias, dropout          kfn
	sumRows, lnDWDB, lnF, lnDX                                        kfn
	attnF, attnDelta, attnDQ, attnDKDV                                kfn
	attn64F, attn64DQ, attn64DKDV                                     kfn
	embF, embTok, patchify, patchU8, asmF, asmPatch, gatherF, gatherB kfn
	sumSq, sumSqMany, adamw, toBF16, fromBF16                         kfn
	scaleMany, adamwMany                                              kfn
	attnTCF, attnTCB                                                  kfn
}

func (k *kernelSet) table() map[string]*kfn {
	return map[string]*kfn{
		"add_f32": &k.add, "add_scaled_f32": &k.addScaled, "scale_f32": &k.scale, "mul_f32": &k.mul,
		"act_fwd": &k.actF, "act_bwd": &k.actB, "add_bias_rows": &k.addBias,
		"dropout_apply": &k.dropout, "sum_rows_acc": &k.sumRows, "layernorm_bwd_dwdb": &k.lnDWDB,
		"layernorm_fwd": &k.lnF, "layernorm_bwd_dx": &k.lnDX,
		"attn_fwd": &k.attnF, "attn_bwd_delta": &k.attnDelta, "attn_bwd_dq": &k.attnDQ, "attn_bwd_dkdv": &k.attnDKDV,
		"attn64_fwd": &k.attn64F, "attn64_bwd_dq": &k.attn64DQ, "attn64_bwd_dkdv": &k.attn64DKDV,
		"attn64_tc_fwd": &k.attnTCF, "attn64_tc_bwd": &k.attnTCB,
		"embed_tokens_fwd": &k.embF, "embed_tokens_bwd_tok": &k.embTok, "patchify": &k.patchify, "patchify_u8": &k.patchU8,
		"assemble_vision_fwd": &k.asmF, "assemble_vision_bwd_patch": &k.asmPatch,
		"gather_rows_fwd": &k.gatherF, "gather_rows_bwd": &k.gatherB,
		"sum_squares_partial": &k.sumSq, "sum_squares_many": &k.sumSqMany, "scale_many": &k.scaleMany, "adamw_many": &k.adamwMany, "adamw": &k.adamw, "f32_to_bf16": &k.toBF16, "bf16_to_f32": &k.fromBF16,
	}
}

var _ backend.Backend = (*Backend)(nil)

// Available reports whether a CUDA GPU can be used, and why not.
func Available() error { return available() }

// New opens GPU ordinal (0-based) with the given options: it retains the
// device's primary context, loads the kernels and cuBLAS, and creates the
// stream every operation runs on.
func New(ordinal int, opts Options) (*Backend, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	g, err := openGPU(ordinal)
	if err != nil {
		return nil, err
	}
	b := &Backend{opts: opts, ordinal: ordinal, g: g, pool: newPool(g), host: map[unsafe.Pointer]int{}}
	if profilingRequested() {
		b.prof = newProfiler()
	}
	fail := func(e error) (*Backend, error) {
		b.pool.release()
		g.close()
		return nil, e
	}
	for name, f := range b.k.table() {
		if *f, err = g.kernel(name); err != nil {
			return fail(fmt.Errorf("kernel %s: %w", name, err))
		}
	}
	// Attention may use the device's opt-in shared memory per block; if the
	// driver refuses, it stays within the 48 KiB every GPU allows (the
	// kernels then read long sequences from global memory).
	for _, f := range []kfn{b.k.attnF, b.k.attnDQ, b.k.attnDKDV, b.k.attn64F, b.k.attn64DQ, b.k.attn64DKDV, b.k.attnTCF, b.k.attnTCB} {
		if err := g.setMaxSmem(f, g.maxSmem); err != nil {
			g.maxSmem = 48 * 1024
			break
		}
	}
	if b.partials, err = b.pool.get(reduceMaxBlocks * 8); err != nil {
		return fail(err)
	}
	b.hostPart = make([]float64, reduceMaxBlocks)
	if os.Getenv("CLIPLINE_CUDA_NO_FUSED_BIAS") == "1" {
		b.fusedNote = "off (CLIPLINE_CUDA_NO_FUSED_BIAS=1)"
	} else if ws, err := b.pool.get(ltWorkspace); err != nil {
		b.fusedNote = "off: " + err.Error()
	} else if err := g.fusedBias(ws); err != nil {
		b.fusedNote = "off: " + err.Error()
	} else {
		b.checkFusedBias()
	}
	b.tcAttention = (opts.BF16 || opts.BF16Auto) && os.Getenv("CLIPLINE_CUDA_NO_TC_ATTENTION") != "1"
	b.name = fmt.Sprintf("cuda:%d", ordinal)
	if p := opts.precisionName(); p != "" {
		b.name += "," + p
	}
	return b, nil
}

// checkFusedBias turns the fused bias on when a product with it agrees with
// the unfused one on random data (a library or driver that misbehaves
// costs speed, never correctness).
func (b *Backend) checkFusedBias() {
	const M, K, N = 37, 64, 96
	rng := uint32(12345)
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			rng = rng*1664525 + 1013904223
			v[i] = float32(rng>>8)/float32(1<<24) - 0.5
		}
		return v
	}
	x, w, bias := b.Alloc(M*K), b.Alloc(N*K), b.Alloc(N)
	o1, o2 := b.Alloc(M*N), b.Alloc(M*N)
	defer func() {
		for _, buf := range []backend.Buf{x, w, bias, o1, o2} {
			b.Free(buf)
		}
	}()
	b.Upload(x, rnd(M*K))
	b.Upload(w, rnd(N*K))
	b.Upload(bias, rnd(N))
	b.fused, b.fusedMiss = true, nil
	b.Linear(o1, x, w, bias, M, K, N)
	b.fused = false
	if b.fusedMiss != nil {
		b.fusedNote = "off: " + b.fusedMiss.Error()
		return
	}
	b.Linear(o2, x, w, bias, M, K, N)
	if err := b.Sync(); err != nil {
		b.err = nil
		b.fusedNote = "off: the check failed: " + err.Error()
		return
	}
	h1, h2 := make([]float32, M*N), make([]float32, M*N)
	b.Download(h1, o1)
	b.Download(h2, o2)
	for i := range h1 {
		if d := h1[i] - h2[i]; !(d <= 1e-3 && d >= -1e-3) {
			b.fusedNote = fmt.Sprintf("off: the fused product disagrees (%g vs %g at %d)", h1[i], h2[i], i)
			return
		}
	}
	b.fused, b.fusedNote = true, "on"
}

// FusedBias says whether Linear adds its bias inside the product, and why
// not (or which shape last fell back to the unfused product).
func (b *Backend) FusedBias() (bool, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fused && b.fusedMiss != nil {
		return true, "on, but a shape fell back: " + b.fusedMiss.Error()
	}
	return b.fused, b.fusedNote
}

// Name identifies the backend: "cuda:N", with ",bf16", ",bf16auto" or
// ",tf32" in those modes.
func (b *Backend) Name() string { return b.name }

// DeviceName is the GPU's name as the driver reports it.
func (b *Backend) DeviceName() string { return b.g.name }

// CublasLibrary is the path of the cuBLAS library in use and its version.
func (b *Backend) CublasLibrary() (string, int) { return b.g.blasInfo() }

// Options returns the options the backend was opened with.
func (b *Backend) Options() Options { return b.opts }

// MemStats reports the pool's accounting.
func (b *Backend) MemStats() MemStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pool.stats
}

// ResetPeak starts new high-water marks of MemStats from current usage.
func (b *Backend) ResetPeak() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pool.resetPeak()
}

// DeviceMemory reports the device's free and total memory (cuMemGetInfo),
// which counts every process and the driver's own reservations.
func (b *Backend) DeviceMemory() (free, total int64, err error) {
	b.enter()
	defer b.leave()
	return b.g.memInfo()
}

// TrimCache returns the pool's cached blocks to the driver.
func (b *Backend) TrimCache() error {
	b.enter()
	defer b.leave()
	if err := b.syncStream(); err != nil {
		return err
	}
	return b.pool.trim()
}

// Close waits for queued work and releases the device memory, stream,
// module and cuBLAS handle. The backend and its buffers are unusable after.
func (b *Backend) Close() error {
	b.enter()
	defer b.leave()
	if b.closed {
		return nil
	}
	err := b.syncStream()
	b.destroyProfiler()
	for p := range b.host {
		b.g.hostFree(p)
	}
	b.host = nil
	b.pool.release()
	b.g.close()
	b.closed = true
	return err
}

// enter serialises an operation, pins the goroutine to its OS thread and
// makes the backend's context current there (CUDA contexts are per thread,
// and Go moves goroutines between threads).
func (b *Backend) enter() {
	b.mu.Lock()
	runtime.LockOSThread()
	if b.closed {
		runtime.UnlockOSThread()
		b.mu.Unlock()
		panic("cuda: backend used after Close")
	}
	if err := b.g.current(); err != nil {
		b.fail(fmt.Errorf("cuCtxSetCurrent: %w", err))
	}
}

func (b *Backend) leave() {
	runtime.UnlockOSThread()
	b.mu.Unlock()
}

// fail records the first error; Sync returns it.
func (b *Backend) fail(err error) {
	if err != nil && b.err == nil {
		b.err = err
	}
}

// mustBeHealthy panics when an earlier operation failed, so that results
// computed after a GPU fault are never handed back as data.
func (b *Backend) mustBeHealthy(op string) {
	if b.err != nil {
		panic(fmt.Sprintf("cuda: %s after an earlier GPU error: %v", op, b.err))
	}
}

// argument slots of the next launch

func (b *Backend) a() *Backend { b.nargs = 0; return b }

func (b *Backend) p(x uintptr) *Backend { b.args[b.nargs] = uint64(x); b.nargs++; return b }

func (b *Backend) i(x int) *Backend {
	checkI32("kernel argument", x)
	b.args[b.nargs] = uint64(uint32(int32(x)))
	b.nargs++
	return b
}

func (b *Backend) i64(x int64) *Backend { b.args[b.nargs] = uint64(x); b.nargs++; return b }

func (b *Backend) u64(x uint64) *Backend { b.args[b.nargs] = x; b.nargs++; return b }

func (b *Backend) f(x float32) *Backend {
	b.args[b.nargs] = uint64(*(*uint32)(unsafe.Pointer(&x)))
	b.nargs++
	return b
}

// run launches f with geometry l and the arguments set since a().
func (b *Backend) run(f kfn, l launchDims) {
	if l.empty() {
		return
	}
	b.fail(b.g.launch(f, l, &b.args, b.nargs))
}

// rd and wr return a buffer's device address (0 for nil); wr also records
// the write so bf16 shadows of the range become stale.
func rd(x *devBuf) uintptr {
	if x == nil {
		return 0
	}
	return x.addr()
}

func wr(x *devBuf) uintptr {
	if x == nil {
		return 0
	}
	x.written()
	return x.addr()
}

// ---- memory -------------------------------------------------------------

// newAllocation takes n 4-byte elements from the pool, zero-filled.
func (b *Backend) newAllocation(n int) *allocation {
	if n < 0 {
		panic(fmt.Sprintf("cuda: Alloc(%d)", n))
	}
	ptr, err := b.pool.get(n * 4)
	if err != nil {
		panic(fmt.Sprintf("cuda: out of device memory: %v", err))
	}
	if n > 0 {
		b.fail(b.g.zero32(ptr, n))
	}
	a := &allocation{ptr: ptr, n: n}
	// A buffer the caller drops without Free (int buffers have no Free in
	// the interface) goes back to the pool when collected. Work queued
	// before is ordered before any reuse on the one stream.
	runtime.SetFinalizer(a, b.finalize)
	return a
}

func (b *Backend) finalize(a *allocation) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed && !a.freed {
		b.freeAllocation(a)
	}
}

func (b *Backend) freeAllocation(a *allocation) {
	for _, s := range a.shadows {
		b.pool.put(s.ptr)
	}
	a.shadows = nil
	b.pool.put(a.ptr)
	a.freed = true
}

// Alloc returns a zero-filled buffer of n float32s.
func (b *Backend) Alloc(n int) backend.Buf {
	b.enterOp("Alloc")
	defer b.leaveOp()
	return &devBuf{a: b.newAllocation(n), n: n, root: true}
}

// AllocInt returns a zero-filled buffer of n int32s.
func (b *Backend) AllocInt(n int) backend.IntBuf {
	b.enterOp("AllocInt")
	defer b.leaveOp()
	return &devIntBuf{a: b.newAllocation(n), n: n}
}

// AllocBytes returns a zero-filled buffer of n bytes.
func (b *Backend) AllocBytes(n int) backend.ByteBuf {
	b.enterOp("AllocBytes")
	defer b.leaveOp()
	return &devByteBuf{a: b.newAllocation(ceilDiv(n, 4)), n: n}
}

// AllocHostBytes returns n bytes of page-locked host memory (see
// backend.HostAllocator): an UploadBytes from it is a DMA queued on the
// stream, so the memory must stay unchanged until the next wait.
func (b *Backend) AllocHostBytes(n int) ([]byte, error) {
	b.enter()
	defer b.leave()
	p, err := b.g.hostAlloc(max(n, 1))
	if err != nil {
		return nil, err
	}
	b.host[p] = n
	return unsafe.Slice((*byte)(p), n), nil
}

// FreeHostBytes releases memory from AllocHostBytes after the queued work
// (which may still read it) is done; other slices are ignored.
func (b *Backend) FreeHostBytes(s []byte) {
	if len(s) == 0 {
		return
	}
	p := unsafe.Pointer(unsafe.SliceData(s))
	b.enter()
	defer b.leave()
	if _, ok := b.host[p]; !ok {
		return
	}
	b.fail(b.syncStream())
	delete(b.host, p)
	b.fail(b.g.hostFree(p))
}

// Free returns a buffer from Alloc to the pool; a view (Slice) is ignored.
func (b *Backend) Free(buf backend.Buf) {
	d := asBuf(buf)
	if d == nil || !d.root {
		return
	}
	b.enter()
	defer b.leave()
	if d.a.freed {
		panic("cuda: Free of a buffer already freed")
	}
	b.freeAllocation(d.a)
}

// Upload copies src into the start of dst.
func (b *Backend) Upload(dst backend.Buf, src []float32) {
	d := asBuf(dst)
	need("Upload dst", d, len(src))
	if len(src) == 0 {
		return
	}
	b.enterOp("Upload")
	defer b.leaveOp()
	b.fail(b.g.htod(wr(d), unsafe.Pointer(&src[0]), len(src)*4))
}

// UploadInt copies src into the start of dst.
func (b *Backend) UploadInt(dst backend.IntBuf, src []int32) {
	d := asIntBuf(dst)
	needInt("UploadInt dst", d, len(src))
	if len(src) == 0 {
		return
	}
	b.enterOp("UploadInt")
	defer b.leaveOp()
	b.fail(b.g.htod(d.addr(), unsafe.Pointer(&src[0]), len(src)*4))
}

// UploadBytes copies src into the start of dst.
func (b *Backend) UploadBytes(dst backend.ByteBuf, src []uint8) {
	d := asByteBuf(dst)
	if len(src) > d.n {
		panic(fmt.Sprintf("cuda: UploadBytes of %d bytes into a buffer of %d", len(src), d.n))
	}
	if len(src) == 0 {
		return
	}
	b.enterOp("UploadBytes")
	defer b.leaveOp()
	b.fail(b.g.htod(d.addr(), unsafe.Pointer(&src[0]), len(src)))
}

// Download copies the start of src into dst after the queued work is done.
func (b *Backend) Download(dst []float32, src backend.Buf) {
	s := asBuf(src)
	need("Download src", s, len(dst))
	b.enterOp("Download")
	defer b.leaveOp()
	if len(dst) > 0 {
		b.fail(b.g.dtoh(unsafe.Pointer(&dst[0]), rd(s), len(dst)*4))
	}
	b.fail(b.syncStream())
	b.mustBeHealthy("Download")
}

// Zero sets every element of buf to 0.
func (b *Backend) Zero(buf backend.Buf) {
	d := asBuf(buf)
	if d == nil || d.n == 0 {
		return
	}
	b.enterOp("Zero")
	defer b.leaveOp()
	b.fail(b.g.zero32(wr(d), d.n))
}

// Copy copies src into dst (same length).
func (b *Backend) Copy(dst, src backend.Buf) {
	d, s := asBuf(dst), asBuf(src)
	if d == nil || s == nil || d.n != s.n {
		panic(fmt.Sprintf("cuda: Copy between buffers of %d and %d elements", lenOf(d), lenOf(s)))
	}
	if d.n == 0 {
		return
	}
	b.enterOp("Copy")
	defer b.leaveOp()
	b.fail(b.g.dtod(wr(d), rd(s), d.n*4))
}

func lenOf(d *devBuf) int {
	if d == nil {
		return -1
	}
	return d.n
}

// Sync waits for the queued work and returns the first error since New.
func (b *Backend) Sync() error {
	b.enterOp("Sync")
	defer b.leaveOp()
	b.fail(b.syncStream())
	return b.err
}

// ---- bf16 operands ------------------------------------------------------

// grow makes scratch slot i hold at least bytes bytes.
func (b *Backend) grow(i, bytes int) uintptr {
	s := &b.scratch[i]
	if s.bytes < bytes {
		if s.ptr != 0 {
			b.pool.put(s.ptr) // stream order protects queued users
		}
		ptr, err := b.pool.get(bytes)
		if err != nil {
			panic(fmt.Sprintf("cuda: out of device memory for bf16 scratch: %v", err))
		}
		s.ptr, s.bytes = ptr, roundSize(bytes)
		s.a = nil
	}
	return s.ptr
}

// convert queues x[:n] -> bf16 at dst.
func (b *Backend) convert(dst uintptr, x *devBuf, n int) {
	b.spanBegin("(bf16 convert)")
	b.a().p(dst).p(rd(x)).i(n)
	b.run(b.k.toBF16, elementwise1D(n))
	b.spanEnd()
}

// bf16Act converts activation x[:n] into scratch slot i.
func (b *Backend) bf16Act(i int, x *devBuf, n int) uintptr {
	s := &b.scratch[i]
	if s.a == x.a && s.off == x.off && s.n == n && s.gen == x.a.gen && s.bytes >= n*2 {
		return s.ptr // converted already, and not written since
	}
	dst := b.grow(i, n*2)
	b.convert(dst, x, n)
	s.a, s.off, s.n, s.gen = x.a, x.off, n, x.a.gen
	return dst
}

// bf16Companion returns where a kernel about to write x[:n] (x already
// marked written) should put a bf16 copy of what it writes, and records the
// copy in scratch slot 0 as bf16Act would after converting, so the matrix
// product that reads x next takes the copy instead of converting x again.
// 0 (no copy) outside bf16 mode.
func (b *Backend) bf16Companion(x *devBuf, n int) uintptr {
	if !b.opts.BF16 || n == 0 {
		return 0
	}
	dst := b.grow(0, n*2)
	s := &b.scratch[0]
	s.a, s.off, s.n, s.gen = x.a, x.off, n, x.a.gen
	return dst
}

// bf16Weight returns a bf16 copy of w[:n]: the view's shadow, converted
// again only after a write to its range; with NoWeightCache, scratch slot.
func (b *Backend) bf16Weight(w *devBuf, n, slot int) uintptr {
	if b.opts.NoWeightCache {
		return b.bf16Act(slot, w, n)
	}
	v := w
	if w.n != n {
		v = w.Slice(0, n).(*devBuf)
	}
	s := v.shadowOf()
	if s == nil {
		ptr, err := b.pool.get(n * 2)
		if err != nil {
			panic(fmt.Sprintf("cuda: out of device memory for a bf16 weight copy: %v", err))
		}
		s = &shadow{off: v.off, n: n, ptr: ptr}
		v.a.shadows = append(v.a.shadows, s)
	}
	if !s.valid {
		b.convert(s.ptr, v, n)
		s.valid = true
	}
	return s.ptr
}
