//go:build cuda && !cudaemu

package cuda

// Thin cgo helpers for the few driver calls gorgonia.org/cu does not wrap,
// or wraps with a cost per call that a kernel launch should not pay
// (cu.Function.Launch mallocs its argument arrays on every launch).

/*
#cgo CFLAGS: -I/usr/local/cuda/include
#cgo LDFLAGS: -lcuda -ldl -L/usr/local/cuda/lib64 -L/usr/local/cuda/lib64/stubs -L/usr/lib/x86_64-linux-gnu/stubs
#include <cuda.h>
#include <stdint.h>
#include <stdlib.h>

int clipline_cuinit_result(void);

// cl_launch launches f with nargs arguments stored in 8-byte slots (a
// kernel reads sizeof(param) bytes from the start of its slot; little
// endian, so 4-byte ints and floats sit in the low half).
static CUresult cl_launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                          unsigned bx, unsigned by, unsigned bz, unsigned smem,
                          CUstream s, unsigned long long* args, int nargs) {
    void* p[32];
    for (int i = 0; i < nargs && i < 32; i++) p[i] = &args[i];
    return cuLaunchKernel(f, gx, gy, gz, bx, by, bz, smem, s, p, NULL);
}

static CUresult cl_set_max_dynamic_smem(CUfunction f, int bytes) {
    return cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes);
}

static int cl_device_attr(int dev, int attr) {
    int v = 0;
    if (cuDeviceGetAttribute(&v, (CUdevice_attribute)attr, (CUdevice)dev) != CUDA_SUCCESS) return -1;
    return v;
}

static CUresult cl_event_create(uintptr_t* e) {
    CUevent ev = NULL;
    CUresult r = cuEventCreate(&ev, CU_EVENT_DEFAULT);
    *e = (uintptr_t)ev;
    return r;
}

static CUresult cl_event_record(uintptr_t e, CUstream s) { return cuEventRecord((CUevent)e, s); }

static CUresult cl_event_elapsed(float* ms, uintptr_t a, uintptr_t b) {
    return cuEventElapsedTime(ms, (CUevent)a, (CUevent)b);
}

static CUresult cl_event_destroy(uintptr_t e) { return cuEventDestroy((CUevent)e); }

static CUresult cl_host_alloc(void** p, size_t n) { return cuMemHostAlloc(p, n, 0); }

static CUresult cl_host_free(void* p) { return cuMemFreeHost(p); }

static const char* cl_error_string(int r) {
    const char* s = NULL;
    if (cuGetErrorString((CUresult)r, &s) != CUDA_SUCCESS || s == NULL) return "unknown CUDA error";
    return s;
}

static const char* cl_error_name(int r) {
    const char* s = NULL;
    if (cuGetErrorName((CUresult)r, &s) != CUDA_SUCCESS || s == NULL) return "CUDA_ERROR_UNKNOWN";
    return s;
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gorgonia.org/cu"
)

// driverError formats a CUresult.
func driverError(what string, r C.CUresult) error {
	if r == C.CUDA_SUCCESS {
		return nil
	}
	return fmt.Errorf("%s: %s (%s)", what, C.GoString(C.cl_error_name(C.int(r))), C.GoString(C.cl_error_string(C.int(r))))
}

// initError reports why the CUDA driver could not be initialised, or nil.
func initError() error {
	r := C.clipline_cuinit_result()
	switch {
	case r == -1:
		return fmt.Errorf("CUDA driver was not initialised (internal error: cuInit never ran)")
	case r != 0:
		return driverError("no usable GPU: cuInit failed", C.CUresult(r))
	}
	return nil
}

// cfunc and cstream extract the driver handles from gorgonia's wrappers (a
// struct holding just the handle).
func cfunc(f cu.Function) C.CUfunction { return *(*C.CUfunction)(unsafe.Pointer(&f)) }
func cstream(s cu.Stream) C.CUstream   { return *(*C.CUstream)(unsafe.Pointer(&s)) }

// launch queues kernel f on stream s with geometry l and the first nargs
// argument slots of args.
func launch(f cu.Function, l launchDims, s cu.Stream, args *[32]uint64, nargs int) error {
	r := C.cl_launch(cfunc(f), C.uint(l.Grid.X), C.uint(l.Grid.Y), C.uint(l.Grid.Z),
		C.uint(l.Block.X), C.uint(l.Block.Y), C.uint(l.Block.Z), C.uint(l.Smem),
		cstream(s), (*C.ulonglong)(unsafe.Pointer(&args[0])), C.int(nargs))
	return driverError("cuLaunchKernel", r)
}

func setMaxDynamicSmem(f cu.Function, bytes int) error {
	return driverError("cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)", C.cl_set_max_dynamic_smem(cfunc(f), C.int(bytes)))
}

// Device attribute numbers of cuda.h (stable across CUDA versions).
const (
	attrMaxSmemPerBlockOptin = C.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
	attrMultiprocessors      = C.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
	attrCCMajor              = C.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
	attrCCMinor              = C.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
)

func deviceAttr(dev cu.Device, attr int) int { return int(C.cl_device_attr(C.int(dev), C.int(attr))) }

// gpuEvent is a CUevent (the profiler's timestamps).
type gpuEvent = uintptr

func eventCreate() (gpuEvent, error) {
	var e C.uintptr_t
	if err := driverError("cuEventCreate", C.cl_event_create(&e)); err != nil {
		return 0, err
	}
	return gpuEvent(e), nil
}

func eventRecord(e gpuEvent, s cu.Stream) error {
	return driverError("cuEventRecord", C.cl_event_record(C.uintptr_t(e), cstream(s)))
}

func eventElapsed(a, b gpuEvent) (float32, error) {
	var ms C.float
	err := driverError("cuEventElapsedTime", C.cl_event_elapsed(&ms, C.uintptr_t(a), C.uintptr_t(b)))
	return float32(ms), err
}

func eventDestroy(e gpuEvent) { C.cl_event_destroy(C.uintptr_t(e)) }

// hostAlloc returns n bytes of page-locked host memory (cuMemHostAlloc).
func hostAlloc(n int) (unsafe.Pointer, error) {
	var p unsafe.Pointer
	if err := driverError("cuMemHostAlloc", C.cl_host_alloc(&p, C.size_t(n))); err != nil {
		return nil, err
	}
	return p, nil
}

func hostFree(p unsafe.Pointer) error { return driverError("cuMemFreeHost", C.cl_host_free(p)) }
