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
