//go:build cuda && !cudaemu

package cuda

// cuBLAS is loaded at run time (dlopen), never linked: the CUDA version on
// the machine that runs clipline is not the one it was built against, and
// the binary must start without cuBLAS present when it only uses the CPU.

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef int (*cb_create_t)(void**);
typedef int (*cb_destroy_t)(void*);
typedef int (*cb_set_stream_t)(void*, void*);
typedef int (*cb_set_math_mode_t)(void*, int);
typedef int (*cb_get_version_t)(void*, int*);
typedef int (*cb_gemm_ex_t)(void*, int, int, int, int, int, const void*,
                            const void*, int, int, const void*, int, int,
                            const void*, void*, int, int, int, int);

static void* cb_lib;
static cb_create_t cb_create_p;
static cb_destroy_t cb_destroy_p;
static cb_set_stream_t cb_set_stream_p;
static cb_set_math_mode_t cb_set_math_mode_p;
static cb_get_version_t cb_get_version_p;
static cb_gemm_ex_t cb_gemm_ex_p;
static char cb_err[512];
static int cb_loaded; // the last cb_open's dlopen succeeded
static int cb_was_loaded(void) { return cb_loaded; }

static void cb_close(void) {
    if (cb_lib) dlclose(cb_lib);
    cb_lib = NULL;
    cb_create_p = NULL;
}

// cb_open loads the library at path and resolves the functions clipline
// uses; NULL on success, else a message.
static const char* cb_open(const char* path) {
    cb_close();
    cb_lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    cb_loaded = cb_lib != NULL;
    if (!cb_lib) {
        const char* e = dlerror();
        snprintf(cb_err, sizeof cb_err, "%s", e ? e : "dlopen failed");
        return cb_err;
    }
#define SYM(var, type, name)                                          \
    var = (type)dlsym(cb_lib, name);                                   \
    if (!var) {                                                        \
        snprintf(cb_err, sizeof cb_err, "%s: symbol %s missing", path, name); \
        cb_close();                                                    \
        return cb_err;                                                 \
    }
    SYM(cb_create_p, cb_create_t, "cublasCreate_v2")
    SYM(cb_destroy_p, cb_destroy_t, "cublasDestroy_v2")
    SYM(cb_set_stream_p, cb_set_stream_t, "cublasSetStream_v2")
    SYM(cb_set_math_mode_p, cb_set_math_mode_t, "cublasSetMathMode")
    SYM(cb_get_version_p, cb_get_version_t, "cublasGetVersion_v2")
    SYM(cb_gemm_ex_p, cb_gemm_ex_t, "cublasGemmEx")
#undef SYM
    return NULL;
}

static int cb_create(uintptr_t* h) {
    void* p = NULL;
    int r = cb_create_p(&p);
    *h = (uintptr_t)p;
    return r;
}
static int cb_destroy(uintptr_t h) { return cb_destroy_p((void*)h); }
static int cb_set_stream(uintptr_t h, void* s) { return cb_set_stream_p((void*)h, s); }
static int cb_set_math_mode(uintptr_t h, int m) { return cb_set_math_mode_p((void*)h, m); }
static int cb_version(uintptr_t h) {
    int v = 0;
    if (cb_get_version_p((void*)h, &v) != 0) return -1;
    return v;
}

// cb_gemm: column-major C = alpha op(A) op(B) + beta C with host scalars.
static int cb_gemm(uintptr_t h, int ta, int tb, int m, int n, int k, float alpha,
                   uintptr_t A, int at, int lda, uintptr_t B, int bt, int ldb,
                   float beta, uintptr_t C, int ct, int ldc, int compute) {
    return cb_gemm_ex_p((void*)h, ta, tb, m, n, k, &alpha, (const void*)A, at, lda,
                        (const void*)B, bt, ldb, &beta, (void*)C, ct, ldc, compute,
                        -1); // CUBLAS_GEMM_DEFAULT
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"gorgonia.org/cu"
)

// mathDefault is CUBLAS_DEFAULT_MATH (cublas_api.h).
const mathDefault = 0

var cublasStatus = map[int]string{
	0: "CUBLAS_STATUS_SUCCESS", 1: "CUBLAS_STATUS_NOT_INITIALIZED", 3: "CUBLAS_STATUS_ALLOC_FAILED",
	7: "CUBLAS_STATUS_INVALID_VALUE", 8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR",
	13: "CUBLAS_STATUS_EXECUTION_FAILED", 14: "CUBLAS_STATUS_INTERNAL_ERROR",
	15: "CUBLAS_STATUS_NOT_SUPPORTED", 16: "CUBLAS_STATUS_LICENSE_ERROR",
}

func cublasError(what string, r C.int) error {
	if r == 0 {
		return nil
	}
	name, ok := cublasStatus[int(r)]
	if !ok {
		name = fmt.Sprintf("cublas status %d", int(r))
	}
	return fmt.Errorf("%s: %s", what, name)
}

// cublasMu guards the process-wide library handle of the C shim.
var (
	cublasMu   sync.Mutex
	cublasPath string // the library loaded, "" when none
)

// cublasCandidates lists the libraries to try, best first: $CLIPLINE_CUBLAS,
// the sonames (found through LD_LIBRARY_PATH and the loader cache), then the
// usual install places of the CUDA toolkit and of the pip/conda wheels that
// PyTorch brings.
func cublasCandidates() []string {
	var c []string
	if p := os.Getenv("CLIPLINE_CUBLAS"); p != "" {
		c = append(c, p)
	}
	c = append(c, "libcublas.so.13", "libcublas.so.12", "libcublas.so.11")
	home, _ := os.UserHomeDir()
	patterns := []string{
		"/usr/local/cuda/lib64/libcublas.so.1[123]",
		"/usr/local/cuda-*/lib64/libcublas.so.1[123]",
		"/usr/local/cuda-*/targets/*/lib/libcublas.so.1[123]",
		"/usr/lib/*/libcublas.so.1[123]",
		"/usr/local/lib/python3*/*-packages/nvidia/cublas/lib/libcublas.so.1[123]",
		"/usr/lib/python3*/*-packages/nvidia/cublas/lib/libcublas.so.1[123]",
		"/opt/conda/lib/libcublas.so.1[123]",
		"/opt/conda/lib/python3*/site-packages/nvidia/cublas/lib/libcublas.so.1[123]",
		"/usr/local/lib/python3*/*-packages/torch/lib/libcublas.so.1[123]",
		filepath.Join(home, ".local/lib/python3*/site-packages/nvidia/cublas/lib/libcublas.so.1[123]"),
	}
	if v := os.Getenv("VIRTUAL_ENV"); v != "" {
		patterns = append(patterns, filepath.Join(v, "lib/python3*/site-packages/nvidia/cublas/lib/libcublas.so.1[123]"))
	}
	if v := os.Getenv("CONDA_PREFIX"); v != "" {
		patterns = append(patterns, filepath.Join(v, "lib/libcublas.so.1[123]"))
	}
	var found []string
	for _, p := range patterns {
		m, _ := filepath.Glob(p)
		found = append(found, m...)
	}
	// Newest major version first.
	slices.SortStableFunc(found, func(a, b string) int { return strings.Compare(b[len(b)-2:], a[len(a)-2:]) })
	return append(c, found...)
}

// cublasHandle is a cuBLAS handle bound to the current context and a stream.
type cublasHandle struct {
	h       C.uintptr_t
	version int
	path    string
}

// newCublas loads cuBLAS (once per process) and creates a handle on stream
// s in the current context. A library that loads but cannot create a handle
// (e.g. cuBLAS 13 under a CUDA 12 driver) is skipped for the next one.
func newCublas(s cu.Stream) (*cublasHandle, error) {
	cublasMu.Lock()
	defer cublasMu.Unlock()
	var tried []string
	cands := cublasCandidates()
	if cublasPath != "" {
		cands = []string{cublasPath}
	}
	for _, p := range cands {
		if p != cublasPath {
			cp := C.CString(p)
			msg := C.cb_open(cp)
			C.free(unsafe.Pointer(cp))
			if msg != nil {
				tried = append(tried, C.GoString(msg))
				cublasPath = ""
				continue
			}
			cublasPath = p
		}
		var h C.uintptr_t
		if err := cublasError("cublasCreate", C.cb_create(&h)); err != nil {
			tried = append(tried, p+": "+err.Error())
			C.cb_close()
			cublasPath = ""
			continue
		}
		hd := &cublasHandle{h: h, path: p}
		if err := cublasError("cublasSetStream", C.cb_set_stream(h, unsafe.Pointer(cstream(s)))); err != nil {
			C.cb_destroy(h)
			return nil, err
		}
		if err := cublasError("cublasSetMathMode", C.cb_set_math_mode(h, mathDefault)); err != nil {
			C.cb_destroy(h)
			return nil, err
		}
		hd.version = int(C.cb_version(h))
		return hd, nil
	}
	return nil, fmt.Errorf("cannot load cuBLAS (set CLIPLINE_CUBLAS=/path/to/libcublas.so.12 or add its folder to LD_LIBRARY_PATH); tried:\n  %s",
		strings.Join(tried, "\n  "))
}

func (h *cublasHandle) destroy() { C.cb_destroy(h.h) }

// gemm is cublasGemmEx in column-major terms with fp32 accumulation; A and B
// are of type ab (dtF32 or dtBF16), C is fp32; compute is the cuBLAS
// compute type (compute32F, or a fast one for fp32 operands).
func (h *cublasHandle) gemm(ta, tb int, m, n, k int, alpha float32, A uintptr, lda int, B uintptr, ldb int,
	beta float32, Cp uintptr, ldc int, ab, compute int) error {
	r := C.cb_gemm(h.h, C.int(ta), C.int(tb), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.uintptr_t(A), C.int(ab), C.int(lda), C.uintptr_t(B), C.int(ab), C.int(ldb),
		C.float(beta), C.uintptr_t(Cp), C.int(dtF32), C.int(ldc), C.int(compute))
	if r != 0 {
		return cublasError(fmt.Sprintf("cublasGemmEx(m=%d n=%d k=%d)", m, n, k), r)
	}
	return nil
}

// probeCublas loads the first cuBLAS candidate whose functions all resolve,
// without creating a handle (which needs a GPU), and returns its path.
func probeCublas() (string, error) { return probeCublasIn(cublasCandidates()) }

// probeCublasIn is probeCublas over the given candidates.
func probeCublasIn(candidates []string) (string, error) {
	cublasMu.Lock()
	defer cublasMu.Unlock()
	if cublasPath != "" {
		return cublasPath, nil
	}
	return firstComplete("cuBLAS", candidates, func(p string) libTry {
		cp := C.CString(p)
		defer C.free(unsafe.Pointer(cp))
		msg := C.cb_open(cp)
		if msg == nil {
			C.cb_close()
			return libTry{loaded: true}
		}
		return libTry{loaded: C.cb_was_loaded() != 0, err: errors.New(C.GoString(msg))}
	})
}
