//go:build cuda && !cudaemu

package cuda

import (
	"errors"
	"fmt"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/clipline/clipline/kernels"
)

// gpu is the device under the backend: the CUDA driver (gorgonia.org/cu),
// the kernels' module and cuBLAS. (gpu_emu.go is the CPU emulation used to
// test the backend without a GPU.)
type gpu struct {
	dev     cu.Device
	ctx     cu.CUContext
	stream  cu.Stream
	mod     cu.Module
	blas    *cublasHandle
	lt      *cublasLt // nil when cuBLASLt is unavailable
	ltErr   error     // why lt is nil
	name    string
	maxSmem int
}

// kfn is a loaded kernel.
type kfn = cu.Function

// available reports whether a CUDA GPU can be used, and why not.
func available() error {
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

// openGPU retains device ordinal's primary context (the one the CUDA
// runtime inside cuBLAS uses, so kernels, copies and cuBLAS share it) and
// makes it current on the calling thread (locked by the caller), creates
// the stream, loads the PTX and cuBLAS.
func openGPU(ordinal int) (*gpu, error) {
	if err := available(); err != nil {
		return nil, err
	}
	n, _ := cu.NumDevices()
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("CUDA device %d requested, but %d device(s) present (ordinals 0..%d)", ordinal, n, n-1)
	}
	g := &gpu{}
	var err error
	if g.dev, err = cu.GetDevice(ordinal); err != nil {
		return nil, fmt.Errorf("cuDeviceGet(%d): %w", ordinal, err)
	}
	g.name, _ = g.dev.Name()
	if major := deviceAttr(g.dev, attrCCMajor); major < 8 {
		return nil, fmt.Errorf("CUDA device %d (%s) has compute capability %d.%d; clipline's kernels need 8.0 or newer (Ampere, Hopper, ...)",
			ordinal, g.name, major, deviceAttr(g.dev, attrCCMinor))
	}
	if g.ctx, err = g.dev.RetainPrimaryCtx(); err != nil {
		return nil, fmt.Errorf("retaining the primary context of device %d: %w", ordinal, err)
	}
	fail := func(e error) (*gpu, error) {
		g.close()
		return nil, e
	}
	if err = cu.SetCurrentContext(g.ctx); err != nil {
		return fail(fmt.Errorf("cuCtxSetCurrent: %w", err))
	}
	if g.stream, err = cu.MakeStream(cu.NonBlocking); err != nil {
		return fail(fmt.Errorf("cuStreamCreate: %w", err))
	}
	if g.mod, err = cu.LoadData(kernels.PTX); err != nil {
		return fail(fmt.Errorf("loading the kernels' PTX (JIT for %s): %w", g.name, err))
	}
	g.maxSmem = max(deviceAttr(g.dev, attrMaxSmemPerBlockOptin), 48*1024)
	if g.blas, err = newCublas(g.stream); err != nil {
		return fail(err)
	}
	g.lt, g.ltErr = newCublasLt(g.blas.path)
	return g, nil
}

func (g *gpu) close() {
	if g.lt != nil {
		g.lt.destroy()
		g.lt = nil
	}
	if g.blas != nil {
		g.blas.destroy()
		g.blas = nil
	}
	if g.mod != (cu.Module{}) {
		g.mod.Unload()
		g.mod = cu.Module{}
	}
	if g.stream != (cu.Stream{}) {
		g.stream.Destroy()
		g.stream = cu.Stream{}
	}
	// The primary context stays retained: the CUDA runtime inside cuBLAS
	// keeps state bound to it, and a later New (the tests open many
	// backends) must find the same context rather than a re-created one.
}

func (g *gpu) kernel(name string) (kfn, error) { return g.mod.Function(name) }

func (g *gpu) setMaxSmem(f kfn, bytes int) error { return setMaxDynamicSmem(f, bytes) }

// current makes the context current on the calling (locked) thread.
func (g *gpu) current() error { return cu.SetCurrentContext(g.ctx) }

func (g *gpu) launch(f kfn, l launchDims, args *[32]uint64, nargs int) error {
	return launch(f, l, g.stream, args, nargs)
}

func (g *gpu) alloc(bytes int) (uintptr, error) {
	p, err := cu.MemAlloc(int64(bytes))
	if err != nil {
		return 0, fmt.Errorf("cuMemAlloc(%d): %w", bytes, err)
	}
	return uintptr(p), nil
}

func (g *gpu) free(p uintptr) error { return cu.MemFree(cu.DevicePtr(p)) }

func (g *gpu) hostAlloc(bytes int) (unsafe.Pointer, error) { return hostAlloc(bytes) }

func (g *gpu) hostFree(p unsafe.Pointer) error { return hostFree(p) }

// htod queues a copy from host memory. From pageable memory the driver
// stages src before returning, so src may change afterwards.
func (g *gpu) htod(dst uintptr, src unsafe.Pointer, bytes int) error {
	return cu.MemcpyHtoDAsync(cu.DevicePtr(dst), src, int64(bytes), g.stream)
}

// dtoh copies to pageable host memory; it returns once the copy is done.
func (g *gpu) dtoh(dst unsafe.Pointer, src uintptr, bytes int) error {
	return cu.MemcpyDtoHAsync(dst, cu.DevicePtr(src), int64(bytes), g.stream)
}

func (g *gpu) dtod(dst, src uintptr, bytes int) error {
	return cu.MemcpyDtoDAsync(cu.DevicePtr(dst), cu.DevicePtr(src), int64(bytes), g.stream)
}

func (g *gpu) zero32(dst uintptr, n int) error {
	return cu.MemsetD32Async(cu.DevicePtr(dst), 0, int64(n), g.stream)
}

func (g *gpu) sync() error { return g.stream.Synchronize() }

func (g *gpu) memInfo() (free, total int64, err error) { return cu.MemInfo() }

func (g *gpu) gemm(ta, tb, m, n, k int, alpha float32, A uintptr, lda int, B uintptr, ldb int,
	beta float32, C uintptr, ldc int, ab, compute int) error {
	return g.blas.gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, ab, compute)
}

func (g *gpu) blasInfo() (string, int) { return g.blas.path, g.blas.version }

// fusedBias reports whether gemmBias can work at all (cuBLASLt loaded), and
// hands it its workspace.
func (g *gpu) fusedBias(workspace uintptr) error {
	if g.lt == nil {
		return g.ltErr
	}
	g.lt.ws = workspace
	return nil
}

// gemmBias is gemm with beta 0 plus bias[m] added to every column, in one
// cuBLASLt product; ok is false when the shape has no such algorithm.
func (g *gpu) gemmBias(ta, tb, m, n, k int, A uintptr, lda int, B uintptr, ldb int, C uintptr, ldc int,
	bias uintptr, ab, compute int) (bool, error) {
	return g.lt.gemmBias(unsafe.Pointer(cstream(g.stream)), ta, tb, m, n, k, A, lda, B, ldb, C, ldc, bias, ab, compute)
}

func (g *gpu) eventCreate() (gpuEvent, error)              { return eventCreate() }
func (g *gpu) eventRecord(e gpuEvent) error                { return eventRecord(e, g.stream) }
func (g *gpu) eventElapsed(a, b gpuEvent) (float32, error) { return eventElapsed(a, b) }
func (g *gpu) eventDestroy(e gpuEvent)                     { eventDestroy(e) }
