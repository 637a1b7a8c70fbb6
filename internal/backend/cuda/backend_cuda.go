//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/kernels"
)

// Backend is the CUDA implementation of backend.Backend. Operations queue
// work on one stream and return; Download, SumSquares and Sync wait. It is
// safe for concurrent use (operations are serialised), though one goroutine
// driving it is the intended use.
type Backend struct {
	opts    Options
	ordinal int
	name    string
	devName string

	dev    cu.Device
	ctx    cu.CUContext
	stream cu.Stream
	mod    cu.Module
	k      kernelSet
	blas   *cublasHandle

	maxSmem int // dynamic shared memory a block may use (opt-in maximum)
	sms     int

	mu    sync.Mutex
	pool  *pool
	args  [32]uint64
	nargs int
	err   error // first asynchronous or launch error

	partials uintptr // reduceMaxBlocks float64 partial sums of SumSquares
	hostPart []float64
	scratch  [2]scratchBuf // bf16 copies of GEMM activation operands
	closed   bool
}

// scratchBuf is a growable pool block.
type scratchBuf struct {
	ptr   uintptr
	bytes int
}

// kernelSet holds the functions of kernels/clipline.cu.
type kernelSet struct {
	add, addScaled, scale, mul, qgeluF, qgeluB, addBias, dropout cu.Function
	sumRows, lnDWDB, lnF, lnDX                                   cu.Function
	attnF, attnDelta, attnDQ, attnDKDV                           cu.Function
	embF, embTok, patchify, asmF, asmPatch, gatherF, gatherB     cu.Function
	sumSq, adamw, toBF16, fromBF16                               cu.Function
}

func (k *kernelSet) table() map[string]*cu.Function {
	return map[string]*cu.Function{
		"add_f32": &k.add, "add_scaled_f32": &k.addScaled, "scale_f32": &k.scale, "mul_f32": &k.mul,
		"quick_gelu_fwd": &k.qgeluF, "quick_gelu_bwd": &k.qgeluB, "add_bias_rows": &k.addBias,
		"dropout_mask": &k.dropout, "sum_rows_acc": &k.sumRows, "layernorm_bwd_dwdb": &k.lnDWDB,
		"layernorm_fwd": &k.lnF, "layernorm_bwd_dx": &k.lnDX,
		"attn_fwd": &k.attnF, "attn_bwd_delta": &k.attnDelta, "attn_bwd_dq": &k.attnDQ, "attn_bwd_dkdv": &k.attnDKDV,
		"embed_tokens_fwd": &k.embF, "embed_tokens_bwd_tok": &k.embTok, "patchify": &k.patchify,
		"assemble_vision_fwd": &k.asmF, "assemble_vision_bwd_patch": &k.asmPatch,
		"gather_rows_fwd": &k.gatherF, "gather_rows_bwd": &k.gatherB,
		"sum_squares_partial": &k.sumSq, "adamw": &k.adamw, "f32_to_bf16": &k.toBF16, "bf16_to_f32": &k.fromBF16,
	}
}

var _ backend.Backend = (*Backend)(nil)

// deviceMemory is the pool's raw allocator (the backend's context is current
// whenever the pool runs).
type deviceMemory struct{}

func (deviceMemory) alloc(bytes int) (uintptr, error) {
	p, err := cu.MemAlloc(int64(bytes))
	if err != nil {
		return 0, fmt.Errorf("cuMemAlloc(%d): %w", bytes, err)
	}
	return uintptr(p), nil
}

func (deviceMemory) free(p uintptr) error { return cu.MemFree(cu.DevicePtr(p)) }

// Available reports whether a CUDA GPU can be used, and why not.
func Available() error {
	if err := initError(); err != nil {
		return err
	}
	n, err := cu.NumDevices()
	if err != nil {
		return fmt.Errorf("counting CUDA devices: %w", err)
	}
	if n == 0 {
		return errors.New("no CUDA device found")
	}
	return nil
}

// New opens GPU ordinal (0-based) with the given options: it retains the
// device's primary context, loads the kernels and cuBLAS, and creates the
// stream every operation runs on.
func New(ordinal int, opts Options) (*Backend, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	n, _ := cu.NumDevices()
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("CUDA device %d requested, but %d device(s) present (ordinals 0..%d)", ordinal, n, n-1)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	b := &Backend{opts: opts, ordinal: ordinal, pool: newPool(deviceMemory{})}
	var err error
	if b.dev, err = cu.GetDevice(ordinal); err != nil {
		return nil, fmt.Errorf("cuDeviceGet(%d): %w", ordinal, err)
	}
	b.devName, _ = b.dev.Name()
	if major := deviceAttr(b.dev, attrCCMajor); major < 8 {
		return nil, fmt.Errorf("CUDA device %d (%s) has compute capability %d.%d; clipline's kernels need 8.0 or newer (Ampere, Hopper, ...)",
			ordinal, b.devName, major, deviceAttr(b.dev, attrCCMinor))
	}
	// The primary context is the one the CUDA runtime inside cuBLAS uses, so
	// kernels, copies and cuBLAS calls all share it.
	if b.ctx, err = b.dev.RetainPrimaryCtx(); err != nil {
		return nil, fmt.Errorf("retaining the primary context of device %d: %w", ordinal, err)
	}
	if err = cu.SetCurrentContext(b.ctx); err != nil {
		return nil, fmt.Errorf("cuCtxSetCurrent: %w", err)
	}
	fail := func(e error) (*Backend, error) {
		b.release()
		return nil, e
	}
	if b.stream, err = cu.MakeStream(cu.NonBlocking); err != nil {
		return fail(fmt.Errorf("cuStreamCreate: %w", err))
	}
	if b.mod, err = cu.LoadData(kernels.PTX); err != nil {
		return fail(fmt.Errorf("loading the kernels' PTX (JIT for %s): %w", b.devName, err))
	}
	for name, f := range b.k.table() {
		if *f, err = b.mod.Function(name); err != nil {
			return fail(fmt.Errorf("kernel %s: %w", name, err))
		}
	}
	b.sms = deviceAttr(b.dev, attrMultiprocessors)
	b.maxSmem = deviceAttr(b.dev, attrMaxSmemPerBlockOptin)
	if b.maxSmem < 48*1024 {
		b.maxSmem = 48 * 1024
	}
	for _, f := range []cu.Function{b.k.attnF, b.k.attnDQ, b.k.attnDKDV} {
		if err := setMaxDynamicSmem(f, b.maxSmem); err != nil {
			return fail(err)
		}
	}
	if b.blas, err = newCublas(b.stream); err != nil {
		return fail(err)
	}
	if b.partials, err = b.pool.get(reduceMaxBlocks * 8); err != nil {
		return fail(err)
	}
	b.hostPart = make([]float64, reduceMaxBlocks)
	b.name = fmt.Sprintf("cuda:%d", ordinal)
	if opts.BF16 {
		b.name += ",bf16"
	}
	return b, nil
}

// Name identifies the backend: "cuda:N", with ",bf16" in bf16 mode.
func (b *Backend) Name() string { return b.name }

// DeviceName is the GPU's name as the driver reports it.
func (b *Backend) DeviceName() string { return b.devName }

// CublasLibrary is the path of the cuBLAS library in use and its version.
func (b *Backend) CublasLibrary() (string, int) { return b.blas.path, b.blas.version }

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
	return cu.MemInfo()
}

// TrimCache returns the pool's cached blocks to the driver.
func (b *Backend) TrimCache() error {
	b.enter()
	defer b.leave()
	if err := b.stream.Synchronize(); err != nil {
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
	err := b.stream.Synchronize()
	b.release()
	b.closed = true
	return err
}

func (b *Backend) release() {
	if b.blas != nil {
		b.blas.destroy()
		b.blas = nil
	}
	b.pool.release()
	if b.mod != (cu.Module{}) {
		b.mod.Unload()
	}
	if b.stream != (cu.Stream{}) {
		b.stream.Destroy()
	}
	b.dev.ReleasePrimaryCtx()
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
	if err := cu.SetCurrentContext(b.ctx); err != nil {
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
func (b *Backend) run(f cu.Function, l launchDims) {
	if l.empty() {
		return
	}
	b.fail(launch(f, l, b.stream, &b.args, b.nargs))
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
		b.fail(cu.MemsetD32Async(cu.DevicePtr(ptr), 0, int64(n), b.stream))
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
	b.enter()
	defer b.leave()
	return &devBuf{a: b.newAllocation(n), n: n, root: true}
}

// AllocInt returns a zero-filled buffer of n int32s.
func (b *Backend) AllocInt(n int) backend.IntBuf {
	b.enter()
	defer b.leave()
	return &devIntBuf{a: b.newAllocation(n), n: n}
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
	b.enter()
	defer b.leave()
	// From pageable memory the driver copies src to a staging buffer before
	// returning, so src may change afterwards.
	b.fail(cu.MemcpyHtoDAsync(cu.DevicePtr(wr(d)), unsafe.Pointer(&src[0]), int64(len(src)*4), b.stream))
}

// UploadInt copies src into the start of dst.
func (b *Backend) UploadInt(dst backend.IntBuf, src []int32) {
	d := asIntBuf(dst)
	needInt("UploadInt dst", d, len(src))
	if len(src) == 0 {
		return
	}
	b.enter()
	defer b.leave()
	b.fail(cu.MemcpyHtoDAsync(cu.DevicePtr(d.addr()), unsafe.Pointer(&src[0]), int64(len(src)*4), b.stream))
}

// Download copies the start of src into dst after the queued work is done.
func (b *Backend) Download(dst []float32, src backend.Buf) {
	s := asBuf(src)
	need("Download src", s, len(dst))
	b.enter()
	defer b.leave()
	if len(dst) > 0 {
		b.fail(cu.MemcpyDtoHAsync(unsafe.Pointer(&dst[0]), cu.DevicePtr(rd(s)), int64(len(dst)*4), b.stream))
	}
	b.fail(b.stream.Synchronize())
	b.mustBeHealthy("Download")
}

// Zero sets every element of buf to 0.
func (b *Backend) Zero(buf backend.Buf) {
	d := asBuf(buf)
	if d == nil || d.n == 0 {
		return
	}
	b.enter()
	defer b.leave()
	b.fail(cu.MemsetD32Async(cu.DevicePtr(wr(d)), 0, int64(d.n), b.stream))
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
	b.enter()
	defer b.leave()
	b.fail(cu.MemcpyDtoDAsync(cu.DevicePtr(wr(d)), cu.DevicePtr(rd(s)), int64(d.n*4), b.stream))
}

func lenOf(d *devBuf) int {
	if d == nil {
		return -1
	}
	return d.n
}

// Sync waits for the queued work and returns the first error since New.
func (b *Backend) Sync() error {
	b.enter()
	defer b.leave()
	b.fail(b.stream.Synchronize())
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
	}
	return s.ptr
}

// convert queues x[:n] -> bf16 at dst.
func (b *Backend) convert(dst uintptr, x *devBuf, n int) {
	b.a().p(dst).p(rd(x)).i(n)
	b.run(b.k.toBF16, elementwise1D(n))
}

// bf16Act converts activation x[:n] into scratch slot i.
func (b *Backend) bf16Act(i int, x *devBuf, n int) uintptr {
	dst := b.grow(i, n*2)
	b.convert(dst, x, n)
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
