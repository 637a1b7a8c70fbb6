//go:build cudaemu

// The kernels of kernels/clipline.cu compiled for the CPU emulator (see
// cuda_emu.h), a launcher that unpacks the backend's 8-byte argument slots
// into each kernel's parameters, and a reference GEMM standing in for
// cuBLAS. Built only with the cudaemu tag, for tests.
#include "cuda_emu.h"

#include <condition_variable>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

thread_local emu_dim3 threadIdx, blockIdx;
emu_dim3 blockDim, gridDim;
thread_local emu_warp* emu_my_warp;
thread_local int emu_lane;
std::barrier<>* emu_block_barrier;
unsigned char* emu_dynamic_smem;
std::mutex emu_atomic_mu;

#include "../../../kernels/clipline.cu"

// The SHA-256 of the clipline.cu compiled in above, as make recorded it
// (the Go build cache does not notice edits of files included from outside
// the package; a test compares this with the current source's).
extern "C" {
const char* emu_kernels_sha256 =
#include "../../../kernels/clipline.cu.sha256"
    ;
}

namespace {

template <class T>
T slot(const uint64_t* s) {
    T v;
    std::memcpy(&v, s, sizeof v);  // little endian: 4-byte values in the low half
    return v;
}

template <class... A, size_t... I>
void call(void (*f)(A...), const uint64_t* s, std::index_sequence<I...>) {
    f(slot<A>(s + I)...);
}

template <class... A>
void call(void (*f)(A...), const uint64_t* s) {
    call(f, s, std::index_sequence_for<A...>{});
}

template <class... A>
constexpr int arity(void (*)(A...)) {
    return sizeof...(A);
}

struct entry {
    const char* name;
    int nargs;
    void (*run)(const uint64_t*);
};

#define KERNEL(k) {#k, arity(k), [](const uint64_t* s) { call(k, s); }},
const entry kernels[] = {
    KERNEL(add_f32) KERNEL(add_scaled_f32) KERNEL(scale_f32) KERNEL(mul_f32)
    KERNEL(act_fwd) KERNEL(act_bwd) KERNEL(add_bias_rows) KERNEL(dropout_apply)
    KERNEL(sum_rows_acc) KERNEL(layernorm_bwd_dwdb) KERNEL(layernorm_fwd) KERNEL(layernorm_bwd_dx)
    KERNEL(attn_fwd) KERNEL(attn_bwd_delta) KERNEL(attn_bwd_dq) KERNEL(attn_bwd_dkdv)
    KERNEL(attn64_fwd) KERNEL(attn64_bwd_dq) KERNEL(attn64_bwd_dkdv)
    KERNEL(attn64_tc_fwd) KERNEL(attn64_tc_bwd)
    KERNEL(embed_tokens_fwd) KERNEL(embed_tokens_bwd_tok) KERNEL(patchify) KERNEL(patchify_u8)
    KERNEL(assemble_vision_fwd) KERNEL(assemble_vision_bwd_patch)
    KERNEL(gather_rows_fwd) KERNEL(gather_rows_bwd)
    KERNEL(sum_squares_partial) KERNEL(sum_squares_many) KERNEL(scale_many) KERNEL(adamw_many) KERNEL(adamw) KERNEL(f32_to_bf16) KERNEL(bf16_to_f32)
};
#undef KERNEL

// pool keeps the threads that play CUDA threads between launches (creating
// a block's worth of threads per launch dominated the emulator's time).
struct pool {
    std::mutex mu;
    std::condition_variable start, done;
    std::vector<std::thread> threads;
    unsigned long generation = 0;
    unsigned want = 0, finished = 0;
    std::function<void(unsigned)> job;

    void worker(unsigned idx) {
        unsigned long seen = 0;
        for (;;) {
            std::function<void(unsigned)> j;
            {
                std::unique_lock<std::mutex> l(mu);
                start.wait(l, [&] { return generation != seen; });
                seen = generation;
                if (idx >= want) continue;
                j = job;
            }
            j(idx);
            std::lock_guard<std::mutex> l(mu);
            if (++finished == want) done.notify_all();
        }
    }

    // run calls f(t) for t in [0, n) on n threads and waits for all.
    void run(unsigned n, std::function<void(unsigned)> f) {
        std::unique_lock<std::mutex> l(mu);
        while (threads.size() < n) {
            threads.emplace_back(&pool::worker, this, (unsigned)threads.size());
            threads.back().detach();
        }
        job = std::move(f);
        want = n;
        finished = 0;
        generation++;
        start.notify_all();
        done.wait(l, [&] { return finished == want; });
    }
};

pool workers;
std::mutex launch_mu;  // one launch at a time (the builtins are globals)

float bf16_value(const void* p, long i) {
    unsigned short h;
    std::memcpy(&h, (const char*)p + 2 * i, 2);
    return __uint_as_float((unsigned)h << 16);
}

}  // namespace

extern "C" {

int emu_kernel_id(const char* name) {
    for (int i = 0; i < (int)(sizeof kernels / sizeof kernels[0]); i++)
        if (std::strcmp(kernels[i].name, name) == 0) return i;
    return -1;
}

// emu_launch runs kernel id to completion: 0 on success, 1 for an unknown
// kernel, 2 for a wrong argument count, 3 for a bad block size.
int emu_launch(int id, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
               unsigned smem, const unsigned long long* args, int nargs) {
    if (id < 0 || id >= (int)(sizeof kernels / sizeof kernels[0])) return 1;
    std::lock_guard<std::mutex> serial(launch_mu);
    const entry& k = kernels[id];
    if (k.nargs != nargs) return 2;
    unsigned nt = bx * by * bz;
    if (nt == 0 || nt > 1024 || nt % 32 != 0) return 3;
    blockDim = {bx, by, bz};
    gridDim = {gx, gy, gz};
    // Aligned as the device's (wmma needs 32-byte aligned tiles).
    std::unique_ptr<unsigned char, decltype(&std::free)> dyn(
        (unsigned char*)std::aligned_alloc(128, (smem + 16 + 127) / 128 * 128), &std::free);
    emu_dynamic_smem = dyn.get();
    std::barrier<> block(nt);
    emu_block_barrier = &block;
    std::vector<emu_warp> warps(nt / 32);
    std::vector<std::barrier<>*> bars;
    for (auto& w : warps) {
        w.bar = new std::barrier<>(32);
        bars.push_back(w.bar);
    }
    const uint64_t* s = (const uint64_t*)args;
    workers.run(nt, [&](unsigned t) {
        threadIdx = {t % bx, (t / bx) % by, t / (bx * by)};
        emu_my_warp = &warps[t / 32];
        emu_lane = (int)(t % 32);
        for (unsigned z = 0; z < gz; z++)
            for (unsigned y = 0; y < gy; y++)
                for (unsigned x = 0; x < gx; x++) {
                    blockIdx = {x, y, z};
                    k.run(s);
                    block.arrive_and_wait();  // the block is done before the next reuses shared memory
                }
    });
    for (auto* b : bars) delete b;
    return 0;
}

// emu_gemm is cublasGemmEx's column-major C = alpha op(A) op(B) + beta C
// with A and B fp32 (ab = 0) or bf16 (ab = 14) and fp32 C and accumulation;
// the fast compute types round fp32 inputs to bf16 (75) or TF32 (77).
void emu_gemm(int ta, int tb, int m, int n, int k, float alpha, uintptr_t A, int lda, uintptr_t B, int ldb,
              float beta, uintptr_t C, int ldc, int ab, int compute) {
    auto round_to = [](float x, int bits) -> float {  // keep `bits` mantissa bits, nearest even
        unsigned u = __float_as_uint(x), drop = 23 - bits;
        u += (1u << (drop - 1)) - 1 + ((u >> drop) & 1);
        return __uint_as_float(u & ~((1u << drop) - 1));
    };
    auto get = [ab, compute, round_to](uintptr_t p, long i) -> float {
        if (ab == 14) return bf16_value((const void*)p, i);
        float x = ((const float*)p)[i];
        if (compute == 75) return round_to(x, 7);
        if (compute == 77) return round_to(x, 10);
        return x;
    };
    float* c = (float*)C;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float acc = 0;
            for (int l = 0; l < k; l++) {
                float a = ta ? get(A, (long)i * lda + l) : get(A, (long)l * lda + i);
                float b = tb ? get(B, (long)l * ldb + j) : get(B, (long)j * ldb + l);
                acc += a * b;
            }
            float* out = c + (long)j * ldc + i;
            *out = alpha * acc + (beta == 0 ? 0.0f : beta * *out);
        }
}

}  // extern "C"
