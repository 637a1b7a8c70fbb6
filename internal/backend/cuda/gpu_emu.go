//go:build cudaemu

package cuda

// The CPU emulation of the device (build tag cudaemu): the backend's Go code
// and the kernels of kernels/clipline.cu, compiled for the CPU by emu.cpp,
// run together with host memory standing in for device memory and a
// reference GEMM for cuBLAS. `go test -tags cudaemu ./internal/backend/cuda/`
// thereby runs the GPU tests' code paths (argument order, launch geometry,
// index arithmetic, synchronisation within blocks) on a machine without a
// GPU. Timing and memory figures mean nothing here. The build cache does not
// see edits of kernels/clipline.cu: after one (and make -C kernels), run
// `go clean -cache`; TestEmulatorKernelsCurrent fails until then.

/*
#cgo CXXFLAGS: -std=c++20 -O2
#cgo LDFLAGS: -lpthread
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern const char* emu_kernels_sha256;
int emu_kernel_id(const char* name);
int emu_launch(int id, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
               unsigned smem, const unsigned long long* args, int nargs);
void emu_gemm(int ta, int tb, int m, int n, int k, float alpha, uintptr_t A, int lda, uintptr_t B, int ldb,
              float beta, uintptr_t C, int ldc, int ab, int compute);

static uintptr_t emu_alloc(size_t n) { return (uintptr_t)aligned_alloc(256, (n + 255) / 256 * 256); }
static void emu_free(uintptr_t p) { free((void*)p); }
static void emu_copy(uintptr_t dst, uintptr_t src, size_t n) { memmove((void*)dst, (const void*)src, n); }
static void emu_zero(uintptr_t dst, size_t n) { memset((void*)dst, 0, n); }
static void emu_add_bias(uintptr_t c, uintptr_t bias, int m, int n, int ldc) {
	float* d = (float*)c;
	const float* b = (const float*)bias;
	for (int j = 0; j < n; j++)
		for (int i = 0; i < m; i++) d[(long)j * ldc + i] += b[i];
}
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

type gpu struct {
	name    string
	maxSmem int
	events  []time.Time // the profiler's events: host clock, work runs synchronously
}

// gpuEvent indexes gpu.events.
type gpuEvent = uintptr

type kfn = C.int

func available() error { return nil }

func openGPU(ordinal int) (*gpu, error) {
	if ordinal != 0 {
		return nil, fmt.Errorf("the emulator has only device 0, not %d", ordinal)
	}
	// H100's shared memory limit, so both attention paths run at the
	// shapes the tests use.
	return &gpu{name: "clipline CPU emulator", maxSmem: 227 * 1024}, nil
}

func (g *gpu) close() {}

// emulatedKernelsSHA256 is the recorded hash of the clipline.cu this
// emulator was compiled from.
func emulatedKernelsSHA256() string { return C.GoString(C.emu_kernels_sha256) }

func (g *gpu) kernel(name string) (kfn, error) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	id := C.emu_kernel_id(cs)
	if id < 0 {
		return 0, fmt.Errorf("no kernel %s in the emulator", name)
	}
	return id, nil
}

func (g *gpu) setMaxSmem(kfn, int) error { return nil }
func (g *gpu) current() error            { return nil }

func (g *gpu) launch(f kfn, l launchDims, args *[32]uint64, nargs int) error {
	if l.Smem > g.maxSmem {
		return fmt.Errorf("launch with %d bytes of shared memory, limit %d", l.Smem, g.maxSmem)
	}
	r := C.emu_launch(f, C.uint(l.Grid.X), C.uint(l.Grid.Y), C.uint(l.Grid.Z),
		C.uint(l.Block.X), C.uint(l.Block.Y), C.uint(l.Block.Z), C.uint(l.Smem),
		(*C.ulonglong)(unsafe.Pointer(&args[0])), C.int(nargs))
	if r != 0 {
		return fmt.Errorf("emulated launch of kernel %d with %d arguments and %+v failed: code %d", int(f), nargs, l, int(r))
	}
	return nil
}

func (g *gpu) alloc(bytes int) (uintptr, error) {
	p := uintptr(C.emu_alloc(C.size_t(bytes)))
	if p == 0 {
		return 0, fmt.Errorf("emulator: allocating %d bytes failed", bytes)
	}
	return p, nil
}

func (g *gpu) free(p uintptr) error { C.emu_free(C.uintptr_t(p)); return nil }

// Page-locked host memory is ordinary C memory here (copies are synchronous).
func (g *gpu) hostAlloc(bytes int) (unsafe.Pointer, error) {
	p := C.malloc(C.size_t(bytes))
	if p == nil {
		return nil, fmt.Errorf("emulator: allocating %d bytes of host memory failed", bytes)
	}
	return p, nil
}

func (g *gpu) hostFree(p unsafe.Pointer) error { C.free(p); return nil }

func (g *gpu) htod(dst uintptr, src unsafe.Pointer, bytes int) error {
	C.emu_copy(C.uintptr_t(dst), C.uintptr_t(uintptr(src)), C.size_t(bytes))
	return nil
}

func (g *gpu) dtoh(dst unsafe.Pointer, src uintptr, bytes int) error {
	C.emu_copy(C.uintptr_t(uintptr(dst)), C.uintptr_t(src), C.size_t(bytes))
	return nil
}

func (g *gpu) dtod(dst, src uintptr, bytes int) error {
	C.emu_copy(C.uintptr_t(dst), C.uintptr_t(src), C.size_t(bytes))
	return nil
}

func (g *gpu) zero32(dst uintptr, n int) error {
	C.emu_zero(C.uintptr_t(dst), C.size_t(4*n))
	return nil
}

// fusedBias: the emulator fuses the bias (emu_gemm_bias), so the backend's
// fused path and its self-check run in the tests too.
func (g *gpu) fusedBias(uintptr) error { return nil }

func (g *gpu) gemmBias(ta, tb, m, n, k int, A uintptr, lda int, B uintptr, ldb int, Cp uintptr, ldc int,
	bias uintptr, ab, compute int) (bool, error) {
	if err := g.gemm(ta, tb, m, n, k, 1, A, lda, B, ldb, 0, Cp, ldc, ab, compute); err != nil {
		return false, err
	}
	C.emu_add_bias(C.uintptr_t(Cp), C.uintptr_t(bias), C.int(m), C.int(n), C.int(ldc))
	return true, nil
}

func (g *gpu) sync() error                             { return nil }
func (g *gpu) memInfo() (free, total int64, err error) { return 0, 0, nil }
func (g *gpu) blasInfo() (string, int)                 { return "emulated GEMM", 0 }

func (g *gpu) gemm(ta, tb, m, n, k int, alpha float32, A uintptr, lda int, B uintptr, ldb int,
	beta float32, Cp uintptr, ldc int, ab, compute int) error {
	C.emu_gemm(C.int(ta), C.int(tb), C.int(m), C.int(n), C.int(k), C.float(alpha), C.uintptr_t(A), C.int(lda),
		C.uintptr_t(B), C.int(ldb), C.float(beta), C.uintptr_t(Cp), C.int(ldc), C.int(ab), C.int(compute))
	return nil
}

func (g *gpu) eventCreate() (gpuEvent, error) {
	g.events = append(g.events, time.Time{})
	return gpuEvent(len(g.events) - 1), nil
}

func (g *gpu) eventRecord(e gpuEvent) error { g.events[e] = time.Now(); return nil }

func (g *gpu) eventElapsed(a, b gpuEvent) (float32, error) {
	return float32(g.events[b].Sub(g.events[a]).Seconds() * 1000), nil
}

func (g *gpu) eventDestroy(gpuEvent) {}
