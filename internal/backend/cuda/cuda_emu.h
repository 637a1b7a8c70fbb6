// A CPU emulation of the few CUDA features kernels/clipline.cu uses, so
// that the CUDA backend's Go code and kernels can be tested together on a
// machine without a GPU (build tag cudaemu; see gpu_emu.go). Every thread
// of a block is a real thread; blocks of a launch run one after another,
// so __shared__ arrays can be function statics. Warp shuffles and
// __syncwarp meet at a per-warp barrier, __syncthreads at a per-block one.
// Only for tests: slow, and it assumes what clipline's kernels respect
// (whole warps take part in shuffles; no thread leaves a block early and
// skips a __syncthreads the others reach).
#pragma once
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <type_traits>

struct emu_dim3 {
    unsigned x, y, z;
};

struct emu_warp {
    std::barrier<>* bar;
    uint64_t slot[32];
};

extern thread_local emu_dim3 threadIdx, blockIdx;
extern emu_dim3 blockDim, gridDim;
extern thread_local emu_warp* emu_my_warp;
extern thread_local int emu_lane;
extern std::barrier<>* emu_block_barrier;
extern unsigned char* emu_dynamic_smem;
extern std::mutex emu_atomic_mu;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define DYNAMIC_SMEM(T, name) T* name = (T*)emu_dynamic_smem

inline void __syncthreads() { emu_block_barrier->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu_my_warp->bar->arrive_and_wait(); }

template <class T>
inline T __shfl_xor_sync(unsigned, T v, int laneMask) {
    static_assert(sizeof(T) <= 8, "shuffle of a type wider than 8 bytes");
    std::memcpy(&emu_my_warp->slot[emu_lane], &v, sizeof v);
    emu_my_warp->bar->arrive_and_wait();
    T r;
    std::memcpy(&r, &emu_my_warp->slot[emu_lane ^ laneMask], sizeof r);
    emu_my_warp->bar->arrive_and_wait();
    return r;
}

inline unsigned __float_as_uint(float f) {
    unsigned u;
    std::memcpy(&u, &f, 4);
    return u;
}

inline float __uint_as_float(unsigned u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline float atomicAdd(float* p, float v) {
    std::lock_guard<std::mutex> l(emu_atomic_mu);
    float old = *p;
    *p = old + v;
    return old;
}

// expf, logf, sqrtf, fmaxf and INFINITY come from <cmath>/<math.h>.
#include <math.h>

// CUDA's vector types, as far as the kernels use them.
struct float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

// bf16 (cuda_bf16.h), as far as the kernels use it: round to nearest even.
struct __nv_bfloat16 {
    unsigned short x;
};
inline __nv_bfloat16 __float2bfloat16(float f) {
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return {(unsigned short)((u >> 16) | 0x40u)};
    u += 0x7fffu + ((u >> 16) & 1u);
    return {(unsigned short)(u >> 16)};
}
inline float __bfloat162float(__nv_bfloat16 h) { return __uint_as_float((unsigned)h.x << 16); }

#include <cstdio>
#include <cstdlib>

// Warp matrix multiply-accumulate (mma.h), emulated: every thread of the
// warp holds the whole tile, so fragment element order means nothing and
// code may only use fragments through these calls and elementwise over x.
// Stores are done by lane 0 alone and without a barrier, so a kernel that
// reads what other lanes stored without __syncwarp (wrong on the device
// too) races here. The alignment rules of the real calls (256-bit aligned
// pointers, ldm a multiple of 16 bytes) are checked.
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K>
struct tile_shape {
    static constexpr int rows = M, cols = N;  // accumulator
};
template <int M, int N, int K>
struct tile_shape<matrix_a, M, N, K> {
    static constexpr int rows = M, cols = K;
};
template <int M, int N, int K>
struct tile_shape<matrix_b, M, N, K> {
    static constexpr int rows = K, cols = N;
};

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
    static constexpr int rows = tile_shape<Use, M, N, K>::rows, cols = tile_shape<Use, M, N, K>::cols;
    static constexpr int num_elements = rows * cols;
    float x[rows * cols];  // row-major, whatever the memory layout
};

inline float emu_value(float v) { return v; }
inline float emu_value(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T>
inline void emu_check(const T* p, unsigned ldm, const char* what) {
    if (((uintptr_t)p) % 32 != 0 || (ldm * sizeof(T)) % 16 != 0) {
        std::fprintf(stderr, "wmma %s: pointer %p or ldm %u (elements of %zu bytes) misaligned\n", what, (const void*)p,
                     ldm, sizeof(T));
        std::abort();
    }
}

template <class Use, int M, int N, int K, class T, class Layout, class P>
inline void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const P* p, unsigned ldm) {
    emu_check(p, ldm, "load_matrix_sync");
    constexpr bool col = std::is_same<Layout, col_major>::value;
    for (int r = 0; r < f.rows; r++)
        for (int c = 0; c < f.cols; c++) f.x[r * f.cols + c] = emu_value(col ? p[r + (long)c * ldm] : p[(long)r * ldm + c]);
}

template <int M, int N, int K, class T, class P>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T>& f, const P* p, unsigned ldm, layout_t l) {
    emu_check(p, ldm, "load_matrix_sync");
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) f.x[r * N + c] = l == mem_col_major ? p[r + (long)c * ldm] : p[(long)r * ldm + c];
}

template <int M, int N, int K, class T>
inline void store_matrix_sync(T* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm, layout_t l) {
    emu_check(p, ldm, "store_matrix_sync");
    if (emu_lane == 0)
        for (int r = 0; r < M; r++)
            for (int c = 0; c < N; c++) (l == mem_col_major ? p[r + (long)c * ldm] : p[(long)r * ldm + c]) = f.x[r * N + c];
}

template <class Use, int M, int N, int K, class T, class Layout>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, float v) {
    for (auto& e : f.x) e = v;
}

template <int M, int N, int K, class TA, class LA, class TB, class LB, class TC>
inline void mma_sync(fragment<accumulator, M, N, K, TC>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
                     const fragment<matrix_b, M, N, K, TB, LB>& b, const fragment<accumulator, M, N, K, TC>& c) {
    float out[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = c.x[i * N + j];
            for (int k = 0; k < K; k++) s += a.x[i * K + k] * b.x[k * N + j];
            out[i * N + j] = s;
        }
    std::memcpy(d.x, out, sizeof out);
}
}  // namespace wmma
}  // namespace nvcuda
