//go:build cuda && !cudaemu

// gorgonia.org/cu calls cuInit in its package init and exits the process
// when it fails (no GPU, no driver, a driver too old). This definition of
// cuInit takes precedence over libcuda's at link time (an object file's
// symbol beats a shared library's): it calls the real cuInit, records the
// result and reports success, so that the process survives and cuda.New
// returns the recorded error instead. A binary built with -tags cuda then
// still runs --device cpu on a machine without a GPU, and the tests skip.

#define _GNU_SOURCE
#include <dlfcn.h>
#include <cuda.h>

static CUresult clipline_init_result = CUDA_ERROR_NOT_INITIALIZED;
static int clipline_init_called = 0;

CUresult cuInit(unsigned int flags) {
    typedef CUresult (*cuInit_fn)(unsigned int);
    static cuInit_fn real = 0;
    if (!real) real = (cuInit_fn)dlsym(RTLD_NEXT, "cuInit");
    clipline_init_called = 1;
    if (!real) {
        clipline_init_result = CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND;
        return CUDA_SUCCESS;
    }
    clipline_init_result = real(flags);
    return CUDA_SUCCESS;
}

// clipline_cuinit_result is the real cuInit's result (-1: never called).
int clipline_cuinit_result(void) {
    return clipline_init_called ? (int)clipline_init_result : -1;
}
