// Package cpu implements backend.Backend in Go on host memory.
//
// Buffers are Go slices (the garbage collector owns them, so Free is a
// no-op); Data, Ints, Wrap and WrapInts give host code direct access. Every
// operation runs synchronously on all cores (runtime.GOMAXPROCS at New)
// with a simple parallel-for; small operations stay on the calling goroutine
// because spawning workers would cost more than the work.
//
// Linear and LinearBackward use a cache-blocked SGEMM (BLIS structure:
// packed panels, a register-tiled micro-kernel) for all three products
// in·Wᵀ, dOut·W and dOutᵀ·in. On amd64 the micro-kernel (internal/simd) is
// AVX-512 (12×32) or AVX2+FMA (6×16) assembly, and exp, quick_gelu, layer
// norm, softmax rows and dropout masks have AVX2/AVX-512 loops, one table
// of them per simd level; both are chosen once, from the CPU's features
// (simd.Selected). Elsewhere, with the purego tag or with
// CLIPLINE_CPU_KERNEL=go, everything runs in portable Go, which the tests
// check the assembly against. Attention runs per (batch, head) pair as
// small GEMMs and saves the softmax probabilities for its backward pass.
//
// NewBF16 makes the bf16 mode (device cpu,bf16, for inference): the
// products the CUDA bf16 mode rounds take bf16 operands with fp32
// accumulation, on VDPBF16PS where the CPU has avx512_bf16 (see bf16.go).
package cpu

//go:generate go run ../../asmgen vec ln dropout

import (
	"fmt"
	"runtime"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/simd"
)

// Buf is a host float32 buffer. Slice views share the underlying array.
type Buf struct{ d []float32 }

// Len is the number of float32 elements.
func (b *Buf) Len() int { return len(b.d) }

// Slice returns a view of n elements starting at off.
func (b *Buf) Slice(off, n int) backend.Buf {
	if off < 0 || n < 0 || off+n > len(b.d) {
		panic(fmt.Sprintf("cpu: Slice(%d, %d) out of range of buffer of %d", off, n, len(b.d)))
	}
	return &Buf{b.d[off : off+n : off+n]}
}

// IntBuf is a host int32 buffer.
type IntBuf struct{ d []int32 }

// Len is the number of int32 elements.
func (b *IntBuf) Len() int { return len(b.d) }

// ByteBuf is a host uint8 buffer.
type ByteBuf struct{ d []uint8 }

// Len is the number of bytes.
func (b *ByteBuf) Len() int { return len(b.d) }

// Data returns the slice behind a cpu buffer (nil for a nil buffer). Writes
// through it are visible to the backend: host-side code and tests use it to
// avoid copies. It panics for a buffer of another backend.
func Data(b backend.Buf) []float32 {
	if b == nil {
		return nil
	}
	cb, ok := b.(*Buf)
	if !ok {
		panic(fmt.Sprintf("cpu: buffer of type %T is not a cpu buffer", b))
	}
	if cb == nil {
		return nil
	}
	return cb.d
}

// Ints returns the slice behind a cpu int buffer (nil for a nil buffer).
func Ints(b backend.IntBuf) []int32 {
	if b == nil {
		return nil
	}
	cb, ok := b.(*IntBuf)
	if !ok {
		panic(fmt.Sprintf("cpu: int buffer of type %T is not a cpu buffer", b))
	}
	if cb == nil {
		return nil
	}
	return cb.d
}

// Bytes returns the slice behind a cpu byte buffer (nil for a nil buffer).
func Bytes(b backend.ByteBuf) []uint8 {
	if b == nil {
		return nil
	}
	cb, ok := b.(*ByteBuf)
	if !ok {
		panic(fmt.Sprintf("cpu: byte buffer of type %T is not a cpu buffer", b))
	}
	if cb == nil {
		return nil
	}
	return cb.d
}

// Wrap makes a buffer that uses d as its storage (no copy), for host code
// that already holds the values (weights read from a checkpoint).
func Wrap(d []float32) backend.Buf { return &Buf{d} }

// WrapInts makes an int buffer that uses d as its storage (no copy).
func WrapInts(d []int32) backend.IntBuf { return &IntBuf{d} }

// Backend is the CPU backend. Its operations keep no state between calls
// (beyond a mutex-guarded list of GEMM scratch buffers), so several
// goroutines may call them at once; each call fans out to the worker count.
type Backend struct {
	workers int
	kern    *simd.Kernel // GEMM micro-kernel
	f32     *panelKernel[float32]
	ops     *vecOps   // row and element loops of the same level
	bf      *bf16Mode // nil: every product in fp32
}

// New returns a CPU backend using runtime.GOMAXPROCS(0) workers.
func New() *Backend { return NewWorkers(runtime.GOMAXPROCS(0)) }

// NewWorkers returns a CPU backend that uses at most n goroutines per
// operation (n < 1 means 1).
func NewWorkers(n int) *Backend { return NewLevel(n, simd.Selected()) }

// NewLevel is NewWorkers with the kernels and vector loops of simd level l
// (one of simd.Available()), for tests and benchmarks that compare levels.
func NewLevel(n int, l simd.Level) *Backend {
	k := simd.KernelFor(l)
	return &Backend{workers: max(n, 1), kern: k, f32: f32Kernel(k), ops: opsFor(l)}
}

var _ backend.Backend = (*Backend)(nil)

// Workers is the number of goroutines an operation may use.
func (be *Backend) Workers() int { return be.workers }

// Name identifies the backend: "cpu", or "cpu,bf16" in bf16 mode.
func (be *Backend) Name() string {
	if be.bf != nil {
		return "cpu,bf16"
	}
	return "cpu"
}

// Alloc returns a zero-filled buffer of n float32s.
func (be *Backend) Alloc(n int) backend.Buf { return &Buf{make([]float32, n)} }

// AllocInt returns a zero-filled buffer of n int32s.
func (be *Backend) AllocInt(n int) backend.IntBuf { return &IntBuf{make([]int32, n)} }

// AllocBytes returns a zero-filled buffer of n bytes.
func (be *Backend) AllocBytes(n int) backend.ByteBuf { return &ByteBuf{make([]uint8, n)} }

// Free is a no-op: the garbage collector owns host memory.
func (be *Backend) Free(b backend.Buf) {}

// Upload copies src into the start of dst.
func (be *Backend) Upload(dst backend.Buf, src []float32) {
	d := Data(dst)
	if len(src) > len(d) {
		panic(fmt.Sprintf("cpu: Upload of %d values into buffer of %d", len(src), len(d)))
	}
	be.wrote(d[:len(src)])
	copy(d, src)
}

// UploadInt copies src into the start of dst.
func (be *Backend) UploadInt(dst backend.IntBuf, src []int32) {
	d := Ints(dst)
	if len(src) > len(d) {
		panic(fmt.Sprintf("cpu: UploadInt of %d values into buffer of %d", len(src), len(d)))
	}
	copy(d, src)
}

// UploadBytes copies src into the start of dst.
func (be *Backend) UploadBytes(dst backend.ByteBuf, src []uint8) {
	d := Bytes(dst)
	if len(src) > len(d) {
		panic(fmt.Sprintf("cpu: UploadBytes of %d bytes into buffer of %d", len(src), len(d)))
	}
	copy(d, src)
}

// Download copies the start of src into dst.
func (be *Backend) Download(dst []float32, src backend.Buf) {
	s := Data(src)
	if len(dst) > len(s) {
		panic(fmt.Sprintf("cpu: Download of %d values from buffer of %d", len(dst), len(s)))
	}
	copy(dst, s)
}

// Zero sets every element of b to 0.
func (be *Backend) Zero(b backend.Buf) {
	be.wrote(Data(b))
	clear(Data(b))
}

// Copy copies src into dst.
func (be *Backend) Copy(dst, src backend.Buf) {
	d, s := Data(dst), Data(src)
	if len(d) != len(s) {
		panic(fmt.Sprintf("cpu: Copy between buffers of %d and %d", len(d), len(s)))
	}
	be.wrote(d)
	copy(d, s)
}

// Sync has nothing to wait for: every operation is synchronous.
func (be *Backend) Sync() error { return nil }

// need returns the first n values of b, panicking with the operation's name
// when the buffer is too short (a memory-plan bug, not a data error).
func need(op, arg string, b backend.Buf, n int) []float32 {
	d := Data(b)
	if len(d) < n {
		panic(fmt.Sprintf("cpu: %s: %s has %d values, need %d", op, arg, len(d), n))
	}
	return d[:n:n]
}

// opt is need for an optional argument: nil stays nil.
func opt(op, arg string, b backend.Buf, n int) []float32 {
	if b == nil {
		return nil
	}
	if d := Data(b); d == nil {
		return nil
	}
	return need(op, arg, b, n)
}

func needInts(op, arg string, b backend.IntBuf, n int) []int32 {
	d := Ints(b)
	if len(d) < n {
		panic(fmt.Sprintf("cpu: %s: %s has %d values, need %d", op, arg, len(d), n))
	}
	return d[:n:n]
}
