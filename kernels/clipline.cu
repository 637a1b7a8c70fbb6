// CUDA kernels of clipline's GPU backend (internal/backend/cuda).
//
// Compiled ahead of time to PTX (kernels/clipline.ptx, committed and embedded
// with go:embed) by `make -C kernels` with nvcc 11.8 for compute_80; newer
// drivers JIT-compile that PTX for the GPU present (A100, H100, ...).
//
// Conventions match internal/backend/backend.go: flat row-major fp32 buffers,
// backward kernels ACCUMULATE (+=) into gradients and skip null pointers.
// Every kernel is extern "C" so the Go side finds it by its plain name.
// Launch geometry is computed in internal/backend/cuda/geometry.go; the
// comment above each kernel says which helper and block size it expects.

#define FULL_MASK 0xffffffffu

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <mma.h>
#endif

// Dynamic shared memory (a macro so that the CPU emulator the backend's
// tests use, internal/backend/cuda/emu.cpp, can supply its own buffer).
#ifndef DYNAMIC_SMEM
#define DYNAMIC_SMEM(T, name) extern __shared__ __align__(128) T name[]
#endif

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

// fp32 -> bf16 bits, round to nearest even; NaN stays a (quiet) NaN.
__device__ __forceinline__ unsigned short to_bf16(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

// Grid-stride loop over n < 2^31 elements (the host checks). Unsigned 32-bit
// indices: the last increment stays below 2^31 + grid size < 2^32, and
// 32-bit division (index -> row, column) is far cheaper than 64-bit.
#define GRID_LOOP(i, n)                                                        \
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned)(n); \
         i += blockDim.x * gridDim.x)

extern "C" {

// ---- elementwise (geometry: elementwise1D, 256 threads) --------------------
// With vec != 0 (every pointer 16-byte aligned and n a multiple of 4, which
// the host checks) each thread moves float4s: fewer, wider memory
// transactions for these bandwidth-bound kernels; the launch then covers n/4.

// The MLP activations, numbered as backend.Activation: 0 quick_gelu
// x·σ(1.702x), 1 gelu x·Φ(x) (exact: Φ(x) = erfc(-x/√2)/2), 2
// gelu_pytorch_tanh 0.5x·(1 + tanh(u)), u = √(2/π)(x + 0.044715x³),
// computed as x·σ(2u) (the same function; 1 + tanh(u) cancels for negative
// x), as the CPU backend does (internal/backend/cpu/gelu.go).
#define ACT_QUICK_GELU 0
#define ACT_GELU 1
#define ACT_GELU_TANH 2

__device__ __forceinline__ float act_f(int act, float x) {
    if (act == ACT_GELU) return 0.5f * x * erfcf(-0.70710678118654752f * x);
    if (act == ACT_GELU_TANH) return x / (1.0f + expf(-x * (1.5957691216057308f + 0.0713548162726009f * x * x)));
    return x / (1.0f + expf(-1.702f * x));
}

__device__ __forceinline__ float act_grad(int act, float x) {
    if (act == ACT_GELU) {
        // Φ(x) + x·φ(x); beyond |x| = 13.5 φ underflows and x·φ is 0.
        float pdf = fabsf(x) < 13.5f ? 0.39894228040143268f * expf(-0.5f * x * x) : 0.0f;
        return 0.5f * erfcf(-0.70710678118654752f * x) + x * pdf;
    }
    if (act == ACT_GELU_TANH) {
        // σ + x·σ(1-σ)·v' with σ(1-σ) = σ²e^(-v) (1-σ cancels near σ = 1);
        // clamped where the derivative is 0 or 1 in float32, so x³ and
        // e^(-v) stay finite.
        x = fminf(fmaxf(x, -10.0f), 10.0f);
        float x2 = x * x;
        float e = expf(-x * (1.5957691216057308f + 0.0713548162726009f * x2));
        float s = 1.0f / (1.0f + e);
        return s + x * s * s * e * (1.5957691216057308f + 0.2140644488178027f * x2);
    }
    float s = 1.0f / (1.0f + expf(-1.702f * x));
    return s + 1.702f * x * s * (1.0f - s);
}

__global__ void add_f32(float* out, const float* a, const float* b, int n, int vec) {
    if (vec) {
        GRID_LOOP(i, n / 4) {
            float4 x = ((const float4*)a)[i], y = ((const float4*)b)[i];
            ((float4*)out)[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
        }
        return;
    }
    GRID_LOOP(i, n) out[i] = a[i] + b[i];
}

__global__ void add_scaled_f32(float* y, const float* x, float alpha, int n, int vec) {
    if (vec) {
        GRID_LOOP(i, n / 4) {
            float4 u = ((const float4*)x)[i], v = ((float4*)y)[i];
            ((float4*)y)[i] = make_float4(v.x + alpha * u.x, v.y + alpha * u.y, v.z + alpha * u.z, v.w + alpha * u.w);
        }
        return;
    }
    GRID_LOOP(i, n) y[i] += alpha * x[i];
}

__global__ void scale_f32(float* x, float alpha, int n, int vec) {
    if (vec) {
        GRID_LOOP(i, n / 4) {
            float4 u = ((float4*)x)[i];
            ((float4*)x)[i] = make_float4(alpha * u.x, alpha * u.y, alpha * u.z, alpha * u.w);
        }
        return;
    }
    GRID_LOOP(i, n) x[i] *= alpha;
}

__global__ void mul_f32(float* out, const float* a, const float* b, int n, int vec) {
    if (vec) {
        GRID_LOOP(i, n / 4) {
            float4 x = ((const float4*)a)[i], y = ((const float4*)b)[i];
            ((float4*)out)[i] = make_float4(x.x * y.x, x.y * y.y, x.z * y.z, x.w * y.w);
        }
        return;
    }
    GRID_LOOP(i, n) out[i] = a[i] * b[i];
}

// store4 writes float4 number i of out and, when out16 is not null, its
// bf16 copy: kernels taking out16 write a bf16 copy of their output
// alongside, for the matrix product that reads it next.
__device__ __forceinline__ void store4(float* out, unsigned short* out16, unsigned i, float4 y) {
    ((float4*)out)[i] = y;
    if (out16) {
        out16[4 * i] = to_bf16(y.x);
        out16[4 * i + 1] = to_bf16(y.y);
        out16[4 * i + 2] = to_bf16(y.z);
        out16[4 * i + 3] = to_bf16(y.w);
    }
}

// out = act(x). in16 (may be null): the input rounded to bf16, kept for a
// backward that reads it instead of the fp32 input (ActivatePacked).
__global__ void act_fwd(float* out, const float* in, int n, int vec, unsigned short* out16,
                        unsigned short* in16, int act) {
    if (vec) {
        GRID_LOOP(i, n / 4) {
            float4 x = ((const float4*)in)[i];
            store4(out, out16, i, make_float4(act_f(act, x.x), act_f(act, x.y), act_f(act, x.z), act_f(act, x.w)));
            if (in16) {
                in16[4 * i] = to_bf16(x.x);
                in16[4 * i + 1] = to_bf16(x.y);
                in16[4 * i + 2] = to_bf16(x.z);
                in16[4 * i + 3] = to_bf16(x.w);
            }
        }
        return;
    }
    GRID_LOOP(i, n) {
        float y = act_f(act, in[i]);
        out[i] = y;
        if (out16) out16[i] = to_bf16(y);
        if (in16) in16[i] = to_bf16(in[i]);
    }
}

// dIn += dOut * act'(x); with acc == 0 dIn = ... (backward kernels take
// acc: 1 accumulates into their input gradients, 0 overwrites them, never
// reading what was there). in16 (may be null): the packed bf16 inputs to
// read instead of in.
__global__ void act_bwd(float* dIn, const float* dOut, const float* in, int n, int vec, int acc,
                        unsigned short* out16, const unsigned short* in16, int act) {
    if (in16) {
        GRID_LOOP(i, n) {
            float y = (acc ? dIn[i] : 0.0f) + dOut[i] * act_grad(act, __uint_as_float((unsigned)in16[i] << 16));
            dIn[i] = y;
            if (out16) out16[i] = to_bf16(y);
        }
        return;
    }
    if (vec) {
        GRID_LOOP(i, n / 4) {
            float4 x = ((const float4*)in)[i], g = ((const float4*)dOut)[i];
            float4 d = acc ? ((float4*)dIn)[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            store4(dIn, out16, i, make_float4(d.x + g.x * act_grad(act, x.x), d.y + g.y * act_grad(act, x.y),
                                              d.z + g.z * act_grad(act, x.z), d.w + g.w * act_grad(act, x.w)));
        }
        return;
    }
    GRID_LOOP(i, n) {
        float y = (acc ? dIn[i] : 0.0f) + dOut[i] * act_grad(act, in[i]);
        dIn[i] = y;
        if (out16) out16[i] = to_bf16(y);
    }
}

// out[r, j] += bias[j] for rows x N (after a GEMM with beta = 0).
__global__ void add_bias_rows(float* out, const float* bias, int rows, int N) {
    GRID_LOOP(i, (unsigned)rows * N) out[i] += bias[i % (unsigned)N];
}

// ---- dropout ----------------------------------------------------------------
// The counter-based generator of the CPU backend (internal/backend/cpu), bit
// for bit: element i draws splitmix64(seed + (i+1) * golden), its top 24 bits
// give u in [0,1); the element is dropped when u < p.
__device__ __forceinline__ unsigned long long splitmix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

__device__ __forceinline__ float dropout_scale(unsigned long long seed, unsigned i, float p, float keep_scale) {
    unsigned long long z = splitmix64(seed + ((unsigned long long)i + 1) * 0x9e3779b97f4a7c15ULL);
    float u = (float)(z >> 40) * (1.0f / 16777216.0f);
    return (u < p) ? 0.0f : keep_scale;
}

// out = in * mask, or out += in * mask with acc != 0 (the backward). The
// mask is drawn again wherever it is needed, never stored.
__global__ void dropout_apply(float* out, const float* in, float p, float keep_scale,
                              unsigned long long seed, int n, int acc) {
    if (acc) {
        GRID_LOOP(i, n) out[i] += in[i] * dropout_scale(seed, i, p, keep_scale);
        return;
    }
    GRID_LOOP(i, n) out[i] = in[i] * dropout_scale(seed, i, p, keep_scale);
}

// ---- reductions over rows (geometry: rowReduce, block 32x8) ----------------
// dst[j] += sum_{r < rows} src[r*stride + j] for j < len. blockIdx.y splits
// the rows; with more than one row chunk the partial sums meet in atomicAdd.
__global__ void sum_rows_acc(float* dst, const float* src, int rows, int len, long long stride) {
    __shared__ float part[8][33];
    int j = blockIdx.x * 32 + threadIdx.x;
    float acc = 0.0f;
    if (j < len) {
        for (int r = blockIdx.y * 8 + threadIdx.y; r < rows; r += 8 * gridDim.y)
            acc += src[(long long)r * stride + j];
    }
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && j < len) {
        float s = 0.0f;
        for (int y = 0; y < 8; y++) s += part[y][threadIdx.x];
        if (gridDim.y == 1) dst[j] += s;
        else atomicAdd(dst + j, s);
    }
}

// LayerNorm parameter gradients: dW[c] += sum_r dOut[r,c] * norm[r,c],
// dB[c] += sum_r dOut[r,c] (either may be null). Same geometry as sum_rows_acc.
__global__ void layernorm_bwd_dwdb(float* dW, float* dB, const float* dOut, const float* in,
                                   const float* mean, const float* rstd, int rows, int C) {
    __shared__ float pw[8][33];
    __shared__ float pb[8][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    float aw = 0.0f, ab = 0.0f;
    if (c < C) {
        for (int r = blockIdx.y * 8 + threadIdx.y; r < rows; r += 8 * gridDim.y) {
            long long o = (long long)r * C + c;
            float g = dOut[o];
            aw += g * (in[o] - mean[r]) * rstd[r];
            ab += g;
        }
    }
    pw[threadIdx.y][threadIdx.x] = aw;
    pb[threadIdx.y][threadIdx.x] = ab;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float sw = 0.0f, sb = 0.0f;
        for (int y = 0; y < 8; y++) {
            sw += pw[y][threadIdx.x];
            sb += pb[y][threadIdx.x];
        }
        if (gridDim.y == 1) {
            if (dW) dW[c] += sw;
            if (dB) dB[c] += sb;
        } else {
            if (dW) atomicAdd(dW + c, sw);
            if (dB) atomicAdd(dB + c, sb);
        }
    }
}

// ---- layer norm (geometry: warpPerRow, 256 threads) ------------------------
// Two-pass statistics in fp32 (biased variance, as PyTorch).
__global__ void layernorm_fwd(float* out, float* mean, float* rstd, const float* in,
                              const float* w, const float* b, int rows, int C, float eps, unsigned short* out16) {
    int row = (int)(((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const float* x = in + (long long)row * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += x[c];
    float m = warp_sum(s) / C;
    float v = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float d = x[c] - m;
        v += d * d;
    }
    v = warp_sum(v) / C;
    float r = 1.0f / sqrtf(v + eps);
    float* o = out + (long long)row * C;
    for (int c = lane; c < C; c += 32) {
        float y = (x[c] - m) * r;
        if (w) y *= w[c];
        if (b) y += b[c];
        o[c] = y;
        if (out16) out16[(long long)row * C + c] = to_bf16(y);
    }
    if (lane == 0) {
        if (mean) mean[row] = m;
        if (rstd) rstd[row] = r;
    }
}

// dIn += (dnorm - mean(dnorm) - norm * mean(dnorm * norm)) * rstd, dnorm = dOut * w.
__global__ void layernorm_bwd_dx(float* dIn, const float* dOut, const float* in, const float* w,
                                 const float* mean, const float* rstd, int rows, int C, unsigned short* out16) {
    int row = (int)(((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    long long base = (long long)row * C;
    float m = mean[row], rs = rstd[row];
    float s1 = 0.0f, s2 = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float dn = dOut[base + c] * (w ? w[c] : 1.0f);
        float nm = (in[base + c] - m) * rs;
        s1 += dn;
        s2 += dn * nm;
    }
    s1 = warp_sum(s1) / C;
    s2 = warp_sum(s2) / C;
    for (int c = lane; c < C; c += 32) {
        float dn = dOut[base + c] * (w ? w[c] : 1.0f);
        float nm = (in[base + c] - m) * rs;
        float y = dIn[base + c] + (dn - s1 - nm * s2) * rs;
        dIn[base + c] = y;
        if (out16) out16[base + c] = to_bf16(y);
    }
}

// ---- attention ---------------------------------------------------------------
// One block per (batch, head) (geometry: attention), ATT_WARPS warps, one warp
// per query row (forward, dQ) or key row (dK, dV). Scores are computed as
// (q . k) * scale in the same order in all three kernels, so the backward
// recomputes exactly the forward's probabilities from the saved log-sum-exp.
// With kv_smem the head's two [T, hd] operands live in shared memory, padded
// to hd+1 floats per row so lanes reading different rows hit different banks;
// otherwise (long sequences) they are read from global memory.
// Dynamic shared memory: (kv_smem ? 2*T*(hd+1) : 0) + warps*(2*hd + 2*T) floats.

// Copies the head slice [T, hd] at src (row stride C) to dst (row stride hd+1).
__device__ __forceinline__ void load_head(float* dst, const float* src, int T, int hd, int C) {
    for (int idx = threadIdx.x; idx < T * hd; idx += blockDim.x) {
        int t = idx / hd, d = idx - t * hd;
        dst[t * (hd + 1) + d] = src[(long long)t * C + d];
    }
}

__global__ void attn_fwd(float* out, float* lse, const float* q, const float* k, const float* v,
                         int B, int T, int C, int NH, int causal, float scale, int kv_smem) {
    DYNAMIC_SMEM(float, sm);
    int bh = blockIdx.x, b = bh / NH, h = bh - b * NH;
    int hd = C / NH;
    int nw = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    long long base = (long long)b * T * C + (long long)h * hd;
    const float *Ks, *Vs;
    int ks;
    float* wb;
    if (kv_smem) {
        float* Kt = sm;
        float* Vt = sm + T * (hd + 1);
        load_head(Kt, k + base, T, hd, C);
        load_head(Vt, v + base, T, hd, C);
        Ks = Kt; Vs = Vt; ks = hd + 1;
        wb = sm + 2 * T * (hd + 1);
        __syncthreads();
    } else {
        Ks = k + base; Vs = v + base; ks = C;
        wb = sm;
    }
    float* qs = wb + warp * (2 * hd + 2 * T);
    float* ps = qs + 2 * hd;
    for (int i = warp; i < T; i += nw) {
        const float* qi = q + base + (long long)i * C;
        for (int d = lane; d < hd; d += 32) qs[d] = qi[d];
        __syncwarp();
        int nk = causal ? i + 1 : T;
        float mx = -INFINITY;
        for (int j = lane; j < nk; j += 32) {
            const float* kj = Ks + (long long)j * ks;
            float s = 0.0f;
            for (int d = 0; d < hd; d++) s += qs[d] * kj[d];
            s *= scale;
            ps[j] = s;
            mx = fmaxf(mx, s);
        }
        mx = warp_max(mx);
        float sum = 0.0f;
        for (int j = lane; j < nk; j += 32) {
            float e = expf(ps[j] - mx);
            ps[j] = e;
            sum += e;
        }
        sum = warp_sum(sum);
        __syncwarp();
        float inv = 1.0f / sum;
        float* oi = out + base + (long long)i * C;
        for (int d = lane; d < hd; d += 32) {
            float o = 0.0f;
            for (int j = 0; j < nk; j++) o += ps[j] * Vs[(long long)j * ks + d];
            oi[d] = o * inv;
        }
        if (lane == 0) lse[(long long)bh * T + i] = mx + logf(sum);
        __syncwarp();
    }
}

// D[b,h,i] = dOut_i . out_i (geometry: warpPerRow over B*T*NH rows).
__global__ void attn_bwd_delta(float* D, const float* dout, const float* out, int B, int T, int C, int NH) {
    int row = (int)(((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (row >= B * T * NH) return;
    int hd = C / NH;
    int h = row % NH, bt = row / NH, b = bt / T, i = bt - b * T;
    long long o = (long long)bt * C + (long long)h * hd;
    float s = 0.0f;
    for (int d = lane; d < hd; d += 32) s += dout[o + d] * out[o + d];
    s = warp_sum(s);
    if (lane == 0) D[((long long)b * NH + h) * T + i] = s;
}

// dQ_i += scale * sum_j P_ij (dP_ij - D_i) k_j, one warp per query row.
__global__ void attn_bwd_dq(float* dq, const float* dout, const float* lse, const float* D,
                            const float* q, const float* k, const float* v,
                            int B, int T, int C, int NH, int causal, float scale, int kv_smem,
                            int accumulate) {
    DYNAMIC_SMEM(float, sm);
    int bh = blockIdx.x, b = bh / NH, h = bh - b * NH;
    int hd = C / NH;
    int nw = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    long long base = (long long)b * T * C + (long long)h * hd;
    const float *Ks, *Vs;
    int ks;
    float* wb;
    if (kv_smem) {
        float* Kt = sm;
        float* Vt = sm + T * (hd + 1);
        load_head(Kt, k + base, T, hd, C);
        load_head(Vt, v + base, T, hd, C);
        Ks = Kt; Vs = Vt; ks = hd + 1;
        wb = sm + 2 * T * (hd + 1);
        __syncthreads();
    } else {
        Ks = k + base; Vs = v + base; ks = C;
        wb = sm;
    }
    float* qs = wb + warp * (2 * hd + 2 * T);
    float* dos = qs + hd;
    float* ds = qs + 2 * hd;
    for (int i = warp; i < T; i += nw) {
        long long oi = base + (long long)i * C;
        for (int d = lane; d < hd; d += 32) {
            qs[d] = q[oi + d];
            dos[d] = dout[oi + d];
        }
        __syncwarp();
        int nk = causal ? i + 1 : T;
        float l = lse[(long long)bh * T + i], Di = D[(long long)bh * T + i];
        for (int j = lane; j < nk; j += 32) {
            const float* kj = Ks + (long long)j * ks;
            const float* vj = Vs + (long long)j * ks;
            float s = 0.0f, dp = 0.0f;
            for (int d = 0; d < hd; d++) {
                s += qs[d] * kj[d];
                dp += dos[d] * vj[d];
            }
            float p = expf(s * scale - l);
            ds[j] = p * (dp - Di);
        }
        __syncwarp();
        for (int d = lane; d < hd; d += 32) {
            float acc = 0.0f;
            for (int j = 0; j < nk; j++) acc += ds[j] * Ks[(long long)j * ks + d];
            dq[oi + d] = (accumulate ? dq[oi + d] : 0.0f) + acc * scale;
        }
        __syncwarp();
    }
}

// dV_j += sum_i P_ij dOut_i, dK_j += scale * sum_i P_ij (dP_ij - D_i) q_i,
// one warp per key row; Q and dOut of the head in shared memory.
__global__ void attn_bwd_dkdv(float* dk, float* dv, const float* dout, const float* lse, const float* D,
                              const float* q, const float* k, const float* v,
                              int B, int T, int C, int NH, int causal, float scale, int kv_smem, int acc) {
    DYNAMIC_SMEM(float, sm);
    int bh = blockIdx.x, b = bh / NH, h = bh - b * NH;
    int hd = C / NH;
    int nw = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    long long base = (long long)b * T * C + (long long)h * hd;
    const float *Qs, *Os;
    int qsd;
    float* wb;
    if (kv_smem) {
        float* Qt = sm;
        float* Ot = sm + T * (hd + 1);
        load_head(Qt, q + base, T, hd, C);
        load_head(Ot, dout + base, T, hd, C);
        Qs = Qt; Os = Ot; qsd = hd + 1;
        wb = sm + 2 * T * (hd + 1);
        __syncthreads();
    } else {
        Qs = q + base; Os = dout + base; qsd = C;
        wb = sm;
    }
    float* ks = wb + warp * (2 * hd + 2 * T);
    float* vs = ks + hd;
    float* ps = ks + 2 * hd;
    float* ds = ps + T;
    const float* L = lse + (long long)bh * T;
    const float* Dh = D + (long long)bh * T;
    for (int j = warp; j < T; j += nw) {
        long long oj = base + (long long)j * C;
        for (int d = lane; d < hd; d += 32) {
            ks[d] = k[oj + d];
            vs[d] = v[oj + d];
        }
        __syncwarp();
        int i0 = causal ? j : 0;
        for (int i = i0 + lane; i < T; i += 32) {
            const float* qi = Qs + (long long)i * qsd;
            const float* oi = Os + (long long)i * qsd;
            float s = 0.0f, dp = 0.0f;
            for (int d = 0; d < hd; d++) {
                s += qi[d] * ks[d];
                dp += oi[d] * vs[d];
            }
            float p = expf(s * scale - L[i]);
            ps[i] = p;
            ds[i] = p * (dp - Dh[i]);
        }
        __syncwarp();
        for (int d = lane; d < hd; d += 32) {
            float av = 0.0f, ak = 0.0f;
            for (int i = i0; i < T; i++) {
                av += ps[i] * Os[(long long)i * qsd + d];
                ak += ds[i] * Qs[(long long)i * qsd + d];
            }
            if (dv) dv[oj + d] = (acc ? dv[oj + d] : 0.0f) + av;
            if (dk) dk[oj + d] = (acc ? dk[oj + d] : 0.0f) + ak * scale;
        }
        __syncwarp();
    }
}

// ---- attention, head size 64 ------------------------------------------------
// The same three passes specialised for hd = 64 (every CLIP from ViT-B/32 to
// ViT-L/14): the row a warp works on is held in registers, the head's
// shared-memory rows are padded to 68 floats so that the float4 reads of
// eight lanes at different rows fall in different banks, and each lane owns
// two of the 64 output columns. Needs 16-byte aligned q, k, v, out, dOut
// and gradients (the host checks) and C a multiple of 4.
// Dynamic shared memory: 2*T*68 + warps*2*T floats.

#define A64_STRIDE 68

// Copies the head slice [T, 64] at src (row stride C) to dst (stride 68).
__device__ __forceinline__ void load_head64(float* dst, const float* src, int T, int C) {
    for (int idx = threadIdx.x; idx < T * 16; idx += blockDim.x) {
        int t = idx >> 4, c = idx & 15;
        *(float4*)(dst + t * A64_STRIDE + 4 * c) = *(const float4*)(src + (long long)t * C + 4 * c);
    }
}

__device__ __forceinline__ void load_row64(float4* r, const float* src) {
    const float4* s = (const float4*)src;
#pragma unroll
    for (int c = 0; c < 16; c++) r[c] = s[c];
}

// dot64 sums a[d]*b[d] for d = 0..63 in order (the same order in all passes).
__device__ __forceinline__ float dot64(const float4* a, const float* b) {
    const float4* bb = (const float4*)b;
    float s = 0.0f;
#pragma unroll
    for (int c = 0; c < 16; c++) {
        float4 y = bb[c];
        s = fmaf(a[c].x, y.x, s);
        s = fmaf(a[c].y, y.y, s);
        s = fmaf(a[c].z, y.z, s);
        s = fmaf(a[c].w, y.w, s);
    }
    return s;
}

__global__ void attn64_fwd(float* out, float* lse, const float* q, const float* k, const float* v,
                           int B, int T, int C, int NH, int causal, float scale) {
    DYNAMIC_SMEM(float, sm);
    int bh = blockIdx.x, b = bh / NH, h = bh - b * NH;
    int nw = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    long long base = (long long)b * T * C + (long long)h * 64;
    float* Ks = sm;
    float* Vs = sm + T * A64_STRIDE;
    float* ps = sm + 2 * T * A64_STRIDE + warp * 2 * T;
    load_head64(Ks, k + base, T, C);
    load_head64(Vs, v + base, T, C);
    __syncthreads();
    float4 qr[16];
    for (int i = warp; i < T; i += nw) {
        long long oi = base + (long long)i * C;
        load_row64(qr, q + oi);
        int nk = causal ? i + 1 : T;
        float mx = -INFINITY;
        for (int j = lane; j < nk; j += 32) {
            float s = dot64(qr, Ks + j * A64_STRIDE) * scale;
            ps[j] = s;
            mx = fmaxf(mx, s);
        }
        mx = warp_max(mx);
        float sum = 0.0f;
        for (int j = lane; j < nk; j += 32) {
            float e = expf(ps[j] - mx);
            ps[j] = e;
            sum += e;
        }
        sum = warp_sum(sum);
        __syncwarp();
        float o0 = 0.0f, o1 = 0.0f;
        for (int j = 0; j < nk; j++) {
            float p = ps[j];
            float2 vv = *(const float2*)(Vs + j * A64_STRIDE + 2 * lane);
            o0 = fmaf(p, vv.x, o0);
            o1 = fmaf(p, vv.y, o1);
        }
        float inv = 1.0f / sum;
        *(float2*)(out + oi + 2 * lane) = make_float2(o0 * inv, o1 * inv);
        if (lane == 0) lse[(long long)bh * T + i] = mx + logf(sum);
        __syncwarp();
    }
}

__global__ void attn64_bwd_dq(float* dq, const float* dout, const float* lse, const float* D,
                              const float* q, const float* k, const float* v,
                              int B, int T, int C, int NH, int causal, float scale, int acc) {
    DYNAMIC_SMEM(float, sm);
    int bh = blockIdx.x, b = bh / NH, h = bh - b * NH;
    int nw = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    long long base = (long long)b * T * C + (long long)h * 64;
    float* Ks = sm;
    float* Vs = sm + T * A64_STRIDE;
    float* ds = sm + 2 * T * A64_STRIDE + warp * 2 * T;
    load_head64(Ks, k + base, T, C);
    load_head64(Vs, v + base, T, C);
    __syncthreads();
    float4 qr[16], dr[16];
    for (int i = warp; i < T; i += nw) {
        long long oi = base + (long long)i * C;
        load_row64(qr, q + oi);
        load_row64(dr, dout + oi);
        int nk = causal ? i + 1 : T;
        float l = lse[(long long)bh * T + i], Di = D[(long long)bh * T + i];
        for (int j = lane; j < nk; j += 32) {
            float s = dot64(qr, Ks + j * A64_STRIDE);
            float dp = dot64(dr, Vs + j * A64_STRIDE);
            float p = expf(s * scale - l);
            ds[j] = p * (dp - Di);
        }
        __syncwarp();
        float a0 = 0.0f, a1 = 0.0f;
        for (int j = 0; j < nk; j++) {
            float w = ds[j];
            float2 kk = *(const float2*)(Ks + j * A64_STRIDE + 2 * lane);
            a0 = fmaf(w, kk.x, a0);
            a1 = fmaf(w, kk.y, a1);
        }
        float2* g = (float2*)(dq + oi + 2 * lane);
        float2 cur = acc ? *g : make_float2(0.0f, 0.0f);
        *g = make_float2(cur.x + a0 * scale, cur.y + a1 * scale);
        __syncwarp();
    }
}

__global__ void attn64_bwd_dkdv(float* dk, float* dv, const float* dout, const float* lse, const float* D,
                                const float* q, const float* k, const float* v,
                                int B, int T, int C, int NH, int causal, float scale, int acc) {
    DYNAMIC_SMEM(float, sm);
    int bh = blockIdx.x, b = bh / NH, h = bh - b * NH;
    int nw = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    long long base = (long long)b * T * C + (long long)h * 64;
    float* Qs = sm;
    float* Os = sm + T * A64_STRIDE;
    float* ps = sm + 2 * T * A64_STRIDE + warp * 2 * T;
    float* ds = ps + T;
    load_head64(Qs, q + base, T, C);
    load_head64(Os, dout + base, T, C);
    __syncthreads();
    const float* L = lse + (long long)bh * T;
    const float* Dh = D + (long long)bh * T;
    float4 kr[16], vr[16];
    for (int j = warp; j < T; j += nw) {
        long long oj = base + (long long)j * C;
        load_row64(kr, k + oj);
        load_row64(vr, v + oj);
        int i0 = causal ? j : 0;
        for (int i = i0 + lane; i < T; i += 32) {
            float s = dot64(kr, Qs + i * A64_STRIDE);
            float dp = dot64(vr, Os + i * A64_STRIDE);
            float p = expf(s * scale - L[i]);
            ps[i] = p;
            ds[i] = p * (dp - Dh[i]);
        }
        __syncwarp();
        float v0 = 0.0f, v1 = 0.0f, k0 = 0.0f, k1 = 0.0f;
        for (int i = i0; i < T; i++) {
            float p = ps[i], w = ds[i];
            float2 oo = *(const float2*)(Os + i * A64_STRIDE + 2 * lane);
            float2 qq = *(const float2*)(Qs + i * A64_STRIDE + 2 * lane);
            v0 = fmaf(p, oo.x, v0);
            v1 = fmaf(p, oo.y, v1);
            k0 = fmaf(w, qq.x, k0);
            k1 = fmaf(w, qq.y, k1);
        }
        if (dv) {
            float2* g = (float2*)(dv + oj + 2 * lane);
            float2 cur = acc ? *g : make_float2(0.0f, 0.0f);
            *g = make_float2(cur.x + v0, cur.y + v1);
        }
        if (dk) {
            float2* g = (float2*)(dk + oj + 2 * lane);
            float2 cur = acc ? *g : make_float2(0.0f, 0.0f);
            *g = make_float2(cur.x + k0 * scale, cur.y + k1 * scale);
        }
        __syncwarp();
    }
}

// ---- attention on tensor cores (bf16 mode, head size 64) ----------------------
// One block per (batch, head); the head's rows are padded to Tp = 16*ceil(T/16)
// and held in shared memory as bf16. The products Q·Kᵀ, P·V (forward) and
// dO·Vᵀ, Pᵀ·dO, dSᵀ·Q, dS·K (backward) run as 16x16x16 WMMA tiles with fp32
// accumulation, spread over the block's warps; the softmax and its
// derivative are fp32. Used only in bf16 mode, whose tolerance covers the
// bf16 rounding of the operands (PyTorch's SDPA under autocast rounds the
// same way). Geometry: attentionTC; shared-memory layout: tcLayout (the
// offsets below must match it).

#define TC_LDH 72  // bf16 row stride of the [Tp, 64] head tiles (64 + 8 pad)

// Tp x 64 head slice at src (row stride C) -> bf16 rows of dst, zero rows
// from T on.
__device__ __forceinline__ void tc_load_head(__nv_bfloat16* dst, const float* src, int T, int Tp, int C) {
    for (int idx = threadIdx.x; idx < Tp * 16; idx += blockDim.x) {
        int t = idx >> 4, c = (idx & 15) * 4;
        float4 x = t < T ? *(const float4*)(src + (long long)t * C + c) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        __nv_bfloat16* d = dst + t * TC_LDH + c;
        d[0] = __float2bfloat16(x.x);
        d[1] = __float2bfloat16(x.y);
        d[2] = __float2bfloat16(x.z);
        d[3] = __float2bfloat16(x.w);
    }
}

typedef nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> tc_acc;
typedef nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major> tc_a_row;
typedef nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::col_major> tc_a_col;
typedef nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::row_major> tc_b_row;
typedef nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, __nv_bfloat16, nvcuda::wmma::col_major> tc_b_col;

// tc_scores: S[i][j] = q_i·k_j for every 16x16 tile not above the diagonal
// (when causal), into Ss (fp32, row stride lds). Tiles go round the warps.
__device__ void tc_scores(float* Ss, int lds, const __nv_bfloat16* Qs, const __nv_bfloat16* Ks, int nt, int causal) {
    int nw = blockDim.x >> 5, warp = threadIdx.x >> 5;
    for (int tile = warp; tile < nt * nt; tile += nw) {
        int ti = tile / nt, tj = tile - ti * nt;
        if (causal && tj > ti) continue;
        tc_acc acc;
        nvcuda::wmma::fill_fragment(acc, 0.0f);
        for (int kk = 0; kk < 4; kk++) {
            tc_a_row a;
            tc_b_col b;  // Kᵀ: column n of the tile is row tj*16+n of K
            nvcuda::wmma::load_matrix_sync(a, Qs + ti * 16 * TC_LDH + kk * 16, TC_LDH);
            nvcuda::wmma::load_matrix_sync(b, Ks + tj * 16 * TC_LDH + kk * 16, TC_LDH);
            nvcuda::wmma::mma_sync(acc, a, b, acc);
        }
        nvcuda::wmma::store_matrix_sync(Ss + ti * 16 * lds + tj * 16, acc, lds, nvcuda::wmma::mem_row_major);
    }
}

// tc_row_product accumulates tile (tr, tc) of X·Y over the first kend
// 16-wide tiles of the inner dimension: X bf16 rows of stride ldx, Y a
// bf16 [Tp][72] head tile.
__device__ __forceinline__ void tc_row_product(tc_acc& acc, const __nv_bfloat16* X, int ldx, const __nv_bfloat16* Y,
                                               int tr, int tc, int kend) {
    for (int kk = 0; kk < kend; kk++) {
        tc_a_row a;
        tc_b_row b;
        nvcuda::wmma::load_matrix_sync(a, X + tr * 16 * ldx + kk * 16, ldx);
        nvcuda::wmma::load_matrix_sync(b, Y + kk * 16 * TC_LDH + tc * 16, TC_LDH);
        nvcuda::wmma::mma_sync(acc, a, b, acc);
    }
}

// tc_write writes a warp's 16x16 fp32 tile, through its staging tile
// (stage, row stride 16), to rows r0.. (< T) and columns c0.. of the head
// slice at dst (row stride C), adding to what is there when acc != 0, and
// its bf16 copy at the same place of dst16 when that is not null.
__device__ __forceinline__ void tc_write(float* dst, unsigned short* dst16, float* stage, const tc_acc& tile, int r0,
                                         int c0, int T, int C, int acc) {
    nvcuda::wmma::store_matrix_sync(stage, tile, 16, nvcuda::wmma::mem_row_major);
    __syncwarp();  // each lane reads elements other lanes stored
    int lane = threadIdx.x & 31;
    for (int e = lane; e < 256; e += 32) {
        int r = r0 + (e >> 4), c = c0 + (e & 15);
        if (r < T) {
            float* d = dst + (long long)r * C + c;
            float y = (acc ? *d : 0.0f) + stage[e];
            *d = y;
            if (dst16) dst16[(long long)r * C + c] = to_bf16(y);
        }
    }
    __syncwarp();  // before the next store into stage
}

// tc_head is a block's view of its head: indices, tile counts and the
// shared-memory tiles Qs, Ks, Vs (bf16 [Tp][72] each); more points past them.
struct tc_head {
    int bh, nw, warp, lane, Tp, nt, lds, ldp;
    long long base;  // offset of the head's first element in [B, T, C]
    __nv_bfloat16 *Qs, *Ks, *Vs;
    unsigned char* more;
};

// tc_begin lays out the head of this block and loads its q, k and v (the
// caller syncs the block before reading them).
__device__ tc_head tc_begin(unsigned char* smem, const float* q, const float* k, const float* v, int T, int C,
                            int NH) {
    tc_head t;
    t.bh = blockIdx.x;
    int b = t.bh / NH, h = t.bh - b * NH;
    t.nw = blockDim.x >> 5;
    t.warp = threadIdx.x >> 5;
    t.lane = threadIdx.x & 31;
    t.Tp = (T + 15) & ~15;
    t.nt = t.Tp >> 4;
    t.lds = t.Tp + 4;
    t.ldp = t.Tp + 8;
    t.base = (long long)b * T * C + (long long)h * 64;
    t.Qs = (__nv_bfloat16*)smem;
    t.Ks = t.Qs + t.Tp * TC_LDH;
    t.Vs = t.Ks + t.Tp * TC_LDH;
    t.more = (unsigned char*)(t.Vs + t.Tp * TC_LDH);
    tc_load_head(t.Qs, q + t.base, T, t.Tp, C);
    tc_load_head(t.Ks, k + t.base, T, t.Tp, C);
    tc_load_head(t.Vs, v + t.base, T, t.Tp, C);
    return t;
}

// Shared memory (bytes, each region 32-byte aligned), forward:
//   Qs, Ks, Vs  bf16 [Tp][72]     3 * Tp*144
//   Ss          fp32 [Tp][Tp+4]   Tp*(Tp+4)*4
//   Ps          bf16 [Tp][Tp+8]   Tp*(Tp+8)*2
//   stage       fp32 [warps][256]
__global__ void attn64_tc_fwd(float* out, float* lse, const float* q, const float* k, const float* v,
                              int B, int T, int C, int NH, int causal, float scale, unsigned short* out16) {
    DYNAMIC_SMEM(unsigned char, tc_smem);
    tc_head t = tc_begin(tc_smem, q, k, v, T, C, NH);
    float* Ss = (float*)t.more;
    __nv_bfloat16* Ps = (__nv_bfloat16*)(Ss + t.Tp * t.lds);
    float* stage = (float*)(Ps + t.Tp * t.ldp) + t.warp * 256;
    __syncthreads();
    tc_scores(Ss, t.lds, t.Qs, t.Ks, t.nt, causal);
    __syncthreads();
    // Softmax of each row, one warp per row; P (normalised, bf16) is zero
    // past the row's last key and on the padding rows.
    for (int i = t.warp; i < t.Tp; i += t.nw) {
        __nv_bfloat16* p = Ps + i * t.ldp;
        int nk = i >= T ? 0 : (causal ? i + 1 : T);
        float mx = -INFINITY;
        for (int j = t.lane; j < nk; j += 32) mx = fmaxf(mx, Ss[i * t.lds + j] * scale);
        mx = warp_max(mx);
        float sum = 0.0f;
        for (int j = t.lane; j < nk; j += 32) sum += expf(Ss[i * t.lds + j] * scale - mx);
        sum = warp_sum(sum);
        float l = mx + logf(sum);
        for (int j = t.lane; j < t.Tp; j += 32) p[j] = __float2bfloat16(j < nk ? expf(Ss[i * t.lds + j] * scale - l) : 0.0f);
        if (t.lane == 0 && i < T) lse[(long long)t.bh * T + i] = l;
    }
    __syncthreads();
    // O = P·V, tile (ti, tc) of [Tp, 64] per warp turn.
    for (int tile = t.warp; tile < t.nt * 4; tile += t.nw) {
        int ti = tile >> 2, tc = tile & 3;
        tc_acc acc;
        nvcuda::wmma::fill_fragment(acc, 0.0f);
        tc_row_product(acc, Ps, t.ldp, t.Vs, ti, tc, causal ? ti + 1 : t.nt);
        tc_write(out + t.base, out16 ? out16 + t.base : nullptr, stage, acc, ti * 16, tc * 16, T, C, 0);
    }
}

// Backward: dQ, dK, dV of one head, from the saved log-sum-exp and
// D_i = dO_i·O_i (attn_bwd_delta). Shared memory:
//   Qs, Ks, Vs, dOs  bf16 [Tp][72]    4 * Tp*144
//   Ps32, dPs        fp32 [Tp][Tp+4]  2 * Tp*(Tp+4)*4
//   Ps, dSs          bf16 [Tp][Tp+8]  2 * Tp*(Tp+8)*2
//   stage            fp32 [warps][256]
__global__ void attn64_tc_bwd(float* dq, float* dk, float* dv, const float* dout, const float* lse, const float* D,
                              const float* q, const float* k, const float* v,
                              int B, int T, int C, int NH, int causal, float scale, int acc) {
    DYNAMIC_SMEM(unsigned char, tc_smem);
    tc_head t = tc_begin(tc_smem, q, k, v, T, C, NH);
    __nv_bfloat16* dOs = (__nv_bfloat16*)t.more;
    float* Ps32 = (float*)(dOs + t.Tp * TC_LDH);
    float* dPs = Ps32 + t.Tp * t.lds;
    __nv_bfloat16* Ps = (__nv_bfloat16*)(dPs + t.Tp * t.lds);
    __nv_bfloat16* dSs = Ps + t.Tp * t.ldp;
    float* stage = (float*)(dSs + t.Tp * t.ldp) + t.warp * 256;
    tc_load_head(dOs, dout + t.base, T, t.Tp, C);
    __syncthreads();
    tc_scores(Ps32, t.lds, t.Qs, t.Ks, t.nt, causal);
    tc_scores(dPs, t.lds, dOs, t.Vs, t.nt, causal);  // dP = dO·Vᵀ has the same tiles
    __syncthreads();
    // P = exp(S*scale - lse) and dS = scale * P * (dP - D), zero past each
    // row's last key and on the padding rows.
    for (int i = t.warp; i < t.Tp; i += t.nw) {
        int nk = i >= T ? 0 : (causal ? i + 1 : T);
        float l = i < T ? lse[(long long)t.bh * T + i] : 0.0f, Di = i < T ? D[(long long)t.bh * T + i] : 0.0f;
        for (int j = t.lane; j < t.Tp; j += 32) {
            float p = 0.0f, ds = 0.0f;
            if (j < nk) {
                p = expf(Ps32[i * t.lds + j] * scale - l);
                ds = scale * p * (dPs[i * t.lds + j] - Di);
            }
            Ps[i * t.ldp + j] = __float2bfloat16(p);
            dSs[i * t.ldp + j] = __float2bfloat16(ds);
        }
    }
    __syncthreads();
    // Output tiles: dV = Pᵀ·dO and dK = dSᵀ·Q (rows are keys), dQ = dS·K
    // (rows are queries); 3 * nt * 4 tiles round the warps.
    for (int tile = t.warp; tile < 3 * t.nt * 4; tile += t.nw) {
        int which = tile / (t.nt * 4), rest = tile - which * t.nt * 4;
        int tr = rest >> 2, tc = rest & 3;
        float* dst = which == 0 ? dv : (which == 1 ? dk : dq);
        if (!dst) continue;
        tc_acc accf;
        nvcuda::wmma::fill_fragment(accf, 0.0f);
        if (which < 2) {
            // Σ_i X[i][key] Y[i][c] over query tiles i (from the key tile on, when causal)
            const __nv_bfloat16* X = which == 0 ? Ps : dSs;
            const __nv_bfloat16* Y = which == 0 ? dOs : t.Qs;
            for (int ki = causal ? tr : 0; ki < t.nt; ki++) {
                tc_a_col a;  // Xᵀ tile: row r is key tr*16+r
                tc_b_row yb;
                nvcuda::wmma::load_matrix_sync(a, X + ki * 16 * t.ldp + tr * 16, t.ldp);
                nvcuda::wmma::load_matrix_sync(yb, Y + ki * 16 * TC_LDH + tc * 16, TC_LDH);
                nvcuda::wmma::mma_sync(accf, a, yb, accf);
            }
        } else {
            tc_row_product(accf, dSs, t.ldp, t.Ks, tr, tc, causal ? tr + 1 : t.nt);
        }
        tc_write(dst + t.base, nullptr, stage, accf, tr * 16, tc * 16, T, C, acc);
    }
}

// ---- embeddings and gathers (geometry: elementwise1D) ------------------------

// out[b,t,c] = tok[ids[b,t], c] + pos[t, c].
__global__ void embed_tokens_fwd(float* out, const int* ids, const float* tok, const float* pos,
                                 int B, int T, int C) {
    GRID_LOOP(i, (unsigned)B * T * C) {
        unsigned bt = i / (unsigned)C, c = i - bt * C;
        unsigned t = bt % (unsigned)T;
        out[i] = tok[(long long)ids[bt] * C + c] + pos[t * C + c];
    }
}

// dTok[ids[b,t], c] += dOut[b,t,c] (ids repeat, hence atomics).
__global__ void embed_tokens_bwd_tok(float* dTok, const float* dOut, const int* ids, int B, int T, int C) {
    GRID_LOOP(i, (unsigned)B * T * C) {
        unsigned bt = i / (unsigned)C, c = i - bt * C;
        atomicAdd(dTok + (long long)ids[bt] * C + c, dOut[i]);
    }
}

// patch_pixel maps element i of the patch rows cols[B*NP, 3*P*P] to the
// pixel it holds: cols[(b*NP + p), c*P*P + ky*P + kx] is image b's channel
// c at row py*P + ky, column px*P + kx, for patch p = (py, px).
struct pixel_at {
    unsigned b, c, y, x;
};

__device__ __forceinline__ pixel_at patch_pixel(unsigned i, unsigned S, unsigned P) {
    unsigned G = S / P, NP = G * G, K = 3 * P * P, PP = P * P;
    unsigned row = i / K, col = i - row * K;
    unsigned b = row / NP, p = row - b * NP;
    unsigned c = col / PP, r = col - c * PP;
    unsigned ky = r / P, kx = r - ky * P;
    unsigned py = p / G, px = p - py * G;
    return pixel_at{b, c, py * P + ky, px * P + kx};
}

// Patch rows of normalised images pixels[B, 3, S, S].
__global__ void patchify(float* cols, const float* pixels, int B, int S, int P) {
    GRID_LOOP(i, (unsigned)B * 3 * S * S) {
        pixel_at q = patch_pixel(i, S, P);
        cols[i] = pixels[((q.b * 3 + q.c) * S + q.y) * S + q.x];
    }
}

// Patch rows of decoded images img[B, S, S, 3] (uint8 HWC RGB), normalised
// through lut[c*256 + level]: the host uploads a quarter of the bytes.
__global__ void patchify_u8(float* cols, const unsigned char* img, const float* lut, int B, int S, int P) {
    GRID_LOOP(i, (unsigned)B * 3 * S * S) {
        pixel_at q = patch_pixel(i, S, P);
        cols[i] = lut[q.c * 256 + img[((q.b * S + q.y) * S + q.x) * 3 + q.c]];
    }
}

// out[b,0,:] = cls + pos[0]; out[b,1+p,:] = patch[b,p,:] + pos[1+p].
__global__ void assemble_vision_fwd(float* out, const float* patch, const float* cls, const float* pos,
                                    int B, int NP, int C) {
    unsigned T = NP + 1, uC = C;
    GRID_LOOP(i, (unsigned)B * T * C) {
        unsigned bt = i / uC, c = i - bt * uC;
        unsigned b = bt / T, t = bt - b * T;
        float x = (t == 0) ? cls[c] : patch[(b * NP + t - 1) * uC + c];
        out[i] = x + pos[t * uC + c];
    }
}

// dPatch[b,p,:] += dOut[b,1+p,:].
__global__ void assemble_vision_bwd_patch(float* dPatch, const float* dOut, int B, int NP, int C) {
    unsigned uC = C, uNP = NP;
    GRID_LOOP(i, (unsigned)B * NP * C) {
        unsigned bp = i / uC, c = i - bp * uC;
        unsigned b = bp / uNP, p = bp - b * uNP;
        dPatch[i] += dOut[(b * (uNP + 1) + 1 + p) * uC + c];
    }
}

// out[i,:] = in[idx[i],:].
__global__ void gather_rows_fwd(float* out, const float* in, const int* idx, int n, int C) {
    GRID_LOOP(i, (unsigned)n * C) {
        unsigned r = i / (unsigned)C, c = i - r * C;
        out[i] = in[(long long)idx[r] * C + c];
    }
}

// dIn[idx[i],:] += dOut[i,:] (indices may repeat).
__global__ void gather_rows_bwd(float* dIn, const float* dOut, const int* idx, int n, int C) {
    GRID_LOOP(i, (unsigned)n * C) {
        unsigned r = i / (unsigned)C, c = i - r * C;
        atomicAdd(dIn + (long long)idx[r] * C + c, dOut[i]);
    }
}

// ---- sum of squares (geometry: reduceBlocks, 256 threads) -------------------
// The sum of x^2 over block `block` of `blocks` blocks' grid-stride share of
// x[:n], in fp64, reduced within the block; thread 0 gets it.
__device__ double sum_squares_block(const float* x, unsigned n, unsigned block, unsigned blocks) {
    __shared__ double sh[32];
    double acc = 0.0;
    for (unsigned i = block * blockDim.x + threadIdx.x; i < n; i += blockDim.x * blocks) {
        double v = x[i];
        acc += v * v;
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(FULL_MASK, acc, o);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) sh[warp] = acc;
    __syncthreads();
    double s = 0.0;
    if (warp == 0) {
        int nw = blockDim.x >> 5;
        s = (lane < nw) ? sh[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(FULL_MASK, s, o);
    }
    return s;
}

// partial[blockIdx.x] = sum of x^2 over the block's grid-stride share, in fp64.
__global__ void sum_squares_partial(double* partial, const float* x, int n) {
    double s = sum_squares_block(x, n, blockIdx.x, gridDim.x);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// sum_squares_partial over many buffers in one launch (geometry:
// reduceMany): buffer y = blockIdx.y is desc[4y..4y+3] = {address, n,
// blocks, first slot}; block x < blocks computes what block x of
// sum_squares_partial with that grid would, into partial[first slot + x].
__global__ void sum_squares_many(double* partial, const long long* desc) {
    const long long* d = desc + 4 * blockIdx.y;
    unsigned blocks = (unsigned)d[2];
    if (blockIdx.x >= blocks) return;  // uniform over the block
    double s = sum_squares_block((const float*)d[0], (unsigned)d[1], blockIdx.x, blocks);
    if (threadIdx.x == 0) partial[d[3] + blockIdx.x] = s;
}

// ---- AdamW (geometry: elementwise1D) -----------------------------------------
// PyTorch's AdamW in the CPU backend's exact expression order:
// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// param = param * (1 - lr wd) - step_size * m / (sqrt(v) / sqrt_bc2 + eps),
// step_size = lr / (1 - b1^t), sqrt_bc2 = sqrt(1 - b2^t) (host, float64).
__device__ __forceinline__ void adamw_at(float* param, const float* grad, float* m, float* v, unsigned i,
                                         float beta1, float beta2, float b1c, float b2c, float eps,
                                         float decay, float step_size, float sqrt_bc2) {
    float g = grad[i];
    float mi = beta1 * m[i] + b1c * g;
    float vi = beta2 * v[i] + b2c * g * g;
    m[i] = mi;
    v[i] = vi;
    float denom = sqrtf(vi) / sqrt_bc2 + eps;
    param[i] = param[i] * decay - step_size * mi / denom;
}

__global__ void adamw(float* param, const float* grad, float* m, float* v, int n,
                      float beta1, float beta2, float b1c, float b2c, float eps,
                      float decay, float step_size, float sqrt_bc2) {
    GRID_LOOP(i, n) adamw_at(param, grad, m, v, i, beta1, beta2, b1c, b2c, eps, decay, step_size, sqrt_bc2);
}

// ---- many buffers in one launch (geometry: manyElementwise) -------------------
// Buffer y = blockIdx.y is described by a row of desc; blocks stride over it.
#define MANY_LOOP(i, n) \
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += blockDim.x * gridDim.x)

// x *= alpha for every buffer; desc rows {address, n}.
__global__ void scale_many(const long long* desc, float alpha) {
    const long long* d = desc + 2 * blockIdx.y;
    float* x = (float*)d[0];
    MANY_LOOP(i, (unsigned)d[1]) x[i] *= alpha;
}

// adamw for every parameter; desc rows {param, grad, m, v, n, decay as
// float bits} (decay = 1 - lr * weight_decay differs between parameters).
__global__ void adamw_many(const long long* desc, float beta1, float beta2, float b1c, float b2c, float eps,
                           float step_size, float sqrt_bc2) {
    const long long* d = desc + 6 * blockIdx.y;
    float decay = __uint_as_float((unsigned)d[5]);
    MANY_LOOP(i, (unsigned)d[4]) {
        adamw_at((float*)d[0], (const float*)d[1], (float*)d[2], (float*)d[3], i, beta1, beta2, b1c, b2c, eps,
                 decay, step_size, sqrt_bc2);
    }
}

// ---- precision conversion (geometry: elementwise1D) --------------------------
// fp32 -> bf16 with round-to-nearest-even; NaN stays a (quiet) NaN.
__global__ void f32_to_bf16(unsigned short* out, const float* in, int n) {
    GRID_LOOP(i, n) out[i] = to_bf16(in[i]);
}

__global__ void bf16_to_f32(float* out, const unsigned short* in, int n) {
    GRID_LOOP(i, n) out[i] = __uint_as_float(((unsigned int)in[i]) << 16);
}

}  // extern "C"
