//go:build cuda && !cudaemu

package cuda

// cuBLASLt, loaded like cuBLAS at run time, for the one thing cublasGemmEx
// cannot do: add Linear's bias inside the product (epilogue BIAS), which
// saves a pass over every biased layer's output. A plan (descriptors and the
// heuristic's algorithm) is made once per shape; a shape the library
// rejects falls back to GemmEx plus the add_bias_rows kernel, and New checks
// the fused path against that fallback before trusting it.

/*
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*lt_create_t)(void**);
typedef int (*lt_destroy_t)(void*);
typedef int (*lt_desc_create_t)(void**, int, int);
typedef int (*lt_set_t)(void*, int, const void*, size_t);
typedef int (*lt_layout_create_t)(void**, int, uint64_t, uint64_t, int64_t);
typedef int (*lt_pref_create_t)(void**);
typedef int (*lt_heur_t)(void*, void*, void*, void*, void*, void*, void*, int, void*, int*);
typedef int (*lt_matmul_t)(void*, void*, const void*, const void*, void*, const void*, void*,
                           const void*, const void*, void*, void*, void*, const void*, void*, size_t, void*);

// cublasLtMatmulHeuristicResult_t (cublasLt.h, unchanged since CUDA 11).
typedef struct {
    uint64_t algo[8];
    size_t workspaceSize;
    int state;
    float wavesCount;
    int reserved[4];
} lt_heur_result;

static void* lt_lib;
static lt_create_t lt_create_p;
static lt_destroy_t lt_destroy_p, lt_desc_destroy_p, lt_layout_destroy_p, lt_pref_destroy_p;
static lt_desc_create_t lt_desc_create_p;
static lt_set_t lt_desc_set_p, lt_pref_set_p;
static lt_layout_create_t lt_layout_create_p;
static lt_pref_create_t lt_pref_create_p;
static lt_heur_t lt_heur_p;
static lt_matmul_t lt_matmul_p;
static char lt_err[512];
#define LT_R_32F 0 // CUDA_R_32F, the scale type

static const char* lt_open(const char* path) {
    if (lt_lib) return NULL;
    void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char* e = dlerror();
        snprintf(lt_err, sizeof lt_err, "%s", e ? e : "dlopen failed");
        return lt_err;
    }
#define LSYM(var, type, name)                                                  \
    var = (type)dlsym(h, name);                                                \
    if (!var) {                                                                \
        snprintf(lt_err, sizeof lt_err, "%s: symbol %s missing", path, name);  \
        dlclose(h);                                                            \
        return lt_err;                                                         \
    }
    LSYM(lt_create_p, lt_create_t, "cublasLtCreate")
    LSYM(lt_destroy_p, lt_destroy_t, "cublasLtDestroy")
    LSYM(lt_desc_create_p, lt_desc_create_t, "cublasLtMatmulDescCreate")
    LSYM(lt_desc_destroy_p, lt_destroy_t, "cublasLtMatmulDescDestroy")
    LSYM(lt_desc_set_p, lt_set_t, "cublasLtMatmulDescSetAttribute")
    LSYM(lt_layout_create_p, lt_layout_create_t, "cublasLtMatrixLayoutCreate")
    LSYM(lt_layout_destroy_p, lt_destroy_t, "cublasLtMatrixLayoutDestroy")
    LSYM(lt_pref_create_p, lt_pref_create_t, "cublasLtMatmulPreferenceCreate")
    LSYM(lt_pref_destroy_p, lt_destroy_t, "cublasLtMatmulPreferenceDestroy")
    LSYM(lt_pref_set_p, lt_set_t, "cublasLtMatmulPreferenceSetAttribute")
    LSYM(lt_heur_p, lt_heur_t, "cublasLtMatmulAlgoGetHeuristic")
    LSYM(lt_matmul_p, lt_matmul_t, "cublasLtMatmul")
#undef LSYM
    lt_lib = h;
    return NULL;
}

static int lt_handle(uintptr_t* h) {
    void* p = NULL;
    int r = lt_create_p(&p);
    *h = (uintptr_t)p;
    return r;
}

static void lt_handle_destroy(uintptr_t h) { lt_destroy_p((void*)h); }

// lt_plan is one shape's descriptors and algorithm.
typedef struct {
    void* desc;
    void *a, *b, *c;
    lt_heur_result heur;
} lt_plan;

// lt_plan_make builds the plan of column-major D[m,n] = op(A) op(B) + bias[m]
// (A, B of type ab, D fp32, workspace up to ws bytes). Returns 0 on success,
// else the failing cuBLAS status (or -1: no algorithm).
static int lt_plan_make(uintptr_t lt, int ta, int tb, int m, int n, int k, int lda, int ldb, int ldc,
                        int ab, int compute, uint64_t ws, uintptr_t* out) {
    lt_plan* p = (lt_plan*)calloc(1, sizeof(lt_plan));
    int r;
    void* pref = NULL;
    int32_t opa = ta, opb = tb;
    uint32_t epi = 4; // CUBLASLT_EPILOGUE_BIAS
    int returned = 0;
    if ((r = lt_desc_create_p(&p->desc, compute, LT_R_32F))) goto fail;
    if ((r = lt_desc_set_p(p->desc, 3, &opa, sizeof opa))) goto fail;  // TRANSA
    if ((r = lt_desc_set_p(p->desc, 4, &opb, sizeof opb))) goto fail;  // TRANSB
    if ((r = lt_desc_set_p(p->desc, 7, &epi, sizeof epi))) goto fail;  // EPILOGUE
    if ((r = lt_layout_create_p(&p->a, ab, ta ? k : m, ta ? m : k, lda))) goto fail;
    if ((r = lt_layout_create_p(&p->b, ab, tb ? n : k, tb ? k : n, ldb))) goto fail;
    if ((r = lt_layout_create_p(&p->c, 0, m, n, ldc))) goto fail;
    if ((r = lt_pref_create_p(&pref))) goto fail;
    if ((r = lt_pref_set_p(pref, 1, &ws, sizeof ws))) goto fail;  // MAX_WORKSPACE_BYTES
    r = lt_heur_p((void*)lt, p->desc, p->a, p->b, p->c, p->c, pref, 1, &p->heur, &returned);
    lt_pref_destroy_p(pref);
    pref = NULL;
    if (r) goto fail;
    if (returned < 1 || p->heur.state != 0) { r = -1; goto fail; }
    *out = (uintptr_t)p;
    return 0;
fail:
    if (pref) lt_pref_destroy_p(pref);
    if (p->desc) lt_desc_destroy_p(p->desc);
    if (p->a) lt_layout_destroy_p(p->a);
    if (p->b) lt_layout_destroy_p(p->b);
    if (p->c) lt_layout_destroy_p(p->c);
    free(p);
    return r;
}

static void lt_plan_free(uintptr_t pp) {
    lt_plan* p = (lt_plan*)pp;
    lt_desc_destroy_p(p->desc);
    lt_layout_destroy_p(p->a);
    lt_layout_destroy_p(p->b);
    lt_layout_destroy_p(p->c);
    free(p);
}

static int lt_run(uintptr_t lt, uintptr_t pp, uintptr_t A, uintptr_t B, uintptr_t D, uintptr_t bias,
                  uintptr_t ws, uint64_t wsSize, void* stream) {
    lt_plan* p = (lt_plan*)pp;
    const void* bp = (const void*)bias;
    int r = lt_desc_set_p(p->desc, 8, &bp, sizeof bp);  // BIAS_POINTER
    if (r) return r;
    float one = 1.0f, zero = 0.0f;
    return lt_matmul_p((void*)lt, p->desc, &one, (const void*)A, p->a, (const void*)B, p->b, &zero,
                       (const void*)D, p->c, (void*)D, p->c, p->heur.algo, (void*)ws, wsSize, stream);
}
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

type ltKey struct{ ta, tb, m, n, k, lda, ldb, ldc, ab, compute int }

// cublasLt is a cuBLASLt handle with its plans.
type cublasLt struct {
	h     C.uintptr_t
	ws    uintptr               // device workspace (from the backend's pool)
	plans map[ltKey]C.uintptr_t // 0: the library has no algorithm for the shape
}

// newCublasLt loads the cuBLASLt beside the cuBLAS in use (same version).
func newCublasLt(cublasPath string) (*cublasLt, error) {
	p := strings.Replace(cublasPath, "libcublas.so", "libcublasLt.so", 1)
	if p == cublasPath {
		return nil, fmt.Errorf("cannot derive cuBLASLt's name from %s", cublasPath)
	}
	cp := C.CString(p)
	defer C.free(unsafe.Pointer(cp))
	cublasMu.Lock()
	msg := C.lt_open(cp)
	cublasMu.Unlock()
	if msg != nil {
		return nil, fmt.Errorf("loading cuBLASLt: %s", C.GoString(msg))
	}
	lt := &cublasLt{plans: map[ltKey]C.uintptr_t{}}
	if err := cublasError("cublasLtCreate", C.lt_handle(&lt.h)); err != nil {
		return nil, err
	}
	return lt, nil
}

func (lt *cublasLt) destroy() {
	for _, p := range lt.plans {
		if p != 0 {
			C.lt_plan_free(p)
		}
	}
	lt.plans = nil
	C.lt_handle_destroy(lt.h)
}

// gemmBias runs column-major D[m,n] = op(A)·op(B) + bias[m] on stream s; ok
// is false when it did not run (err says why): no algorithm for the shape,
// or the library refused it, in which case the shape is not tried again.
// cuBLASLt reports such refusals synchronously, with nothing queued.
func (lt *cublasLt) gemmBias(s unsafe.Pointer, ta, tb, m, n, k int, A uintptr, lda int, B uintptr, ldb int,
	D uintptr, ldc int, bias uintptr, ab, compute int) (ok bool, err error) {
	key := ltKey{ta, tb, m, n, k, lda, ldb, ldc, ab, compute}
	plan, seen := lt.plans[key]
	if !seen {
		r := C.lt_plan_make(lt.h, C.int(ta), C.int(tb), C.int(m), C.int(n), C.int(k), C.int(lda), C.int(ldb), C.int(ldc),
			C.int(ab), C.int(compute), C.uint64_t(ltWorkspace), &plan)
		if r != 0 {
			plan = 0
			lt.plans[key] = 0
			if r == -1 {
				return false, fmt.Errorf("cuBLASLt has no algorithm with a bias epilogue for m=%d n=%d k=%d", m, n, k)
			}
			return false, cublasError(fmt.Sprintf("cuBLASLt plan for m=%d n=%d k=%d", m, n, k), r)
		}
		lt.plans[key] = plan
	}
	if plan == 0 {
		return false, nil
	}
	r := C.lt_run(lt.h, plan, C.uintptr_t(A), C.uintptr_t(B), C.uintptr_t(D), C.uintptr_t(bias),
		C.uintptr_t(lt.ws), C.uint64_t(ltWorkspace), s)
	if r != 0 {
		C.lt_plan_free(plan)
		lt.plans[key] = 0
		return false, cublasError(fmt.Sprintf("cublasLtMatmul(m=%d n=%d k=%d)", m, n, k), r)
	}
	return true, nil
}
