// Package backend defines the compute operations the CLIP model is written
// against. As in llm.c, every layer has a hand-written forward and backward
// over flat float32 buffers; the model allocates all activations and
// gradients once per batch shape (a memory plan) and then only calls these
// operations, so the same model code runs on the CPU backend (internal/backend/cpu)
// and the CUDA backend (internal/backend/cuda, build tag cuda).
//
// Conventions, shared by every implementation:
//   - Buffers are flat, row-major, batch-first: activations are [B, T, C]
//     (rows = B*T), attention heads split C as [NH, C/NH].
//   - Linear weights use PyTorch's layout W[out, in]; Linear computes
//     out = in · Wᵀ + bias.
//   - Forward operations overwrite their outputs. Backward operations
//     ACCUMULATE (+=) into every gradient they are given, and skip any
//     gradient passed as nil, so the caller zeroes gradients once per step and
//     residual branches add up for free. This also lets frozen weights (LoRA)
//     skip their weight gradients. Those whose input gradient is usually
//     written first into a scratch buffer take a GradWrite: SetGrad
//     overwrites it instead, which saves zeroing the buffer beforehand.
//   - Operations may run asynchronously (CUDA); Download and Sync wait.
package backend

// GradWrite says how a backward operation writes its input gradients.
type GradWrite int

const (
	// AddGrad accumulates: dIn += ∂ (the convention).
	AddGrad GradWrite = iota
	// SetGrad overwrites: dIn = ∂, for the first writer of a scratch
	// gradient buffer. Weight and bias gradients still accumulate.
	SetGrad
)

// Buf is a float32 buffer owned by a backend (host memory or device memory).
type Buf interface {
	// Len is the number of float32 elements.
	Len() int
	// Slice returns a view of n elements starting at off; it shares storage.
	Slice(off, n int) Buf
}

// IntBuf is an int32 buffer owned by a backend (token ids, row indices).
type IntBuf interface {
	Len() int
}

// ByteBuf is a uint8 buffer owned by a backend (images as decoded, HWC RGB).
type ByteBuf interface {
	Len() int
}

// Backend is the set of operations the model and trainer use.
type Backend interface {
	// Name identifies the backend ("cpu", "cuda:0").
	Name() string

	// Alloc returns a zero-filled buffer of n float32s.
	Alloc(n int) Buf
	// AllocInt returns a zero-filled buffer of n int32s.
	AllocInt(n int) IntBuf
	// Free releases a buffer (a no-op where the garbage collector owns memory).
	Free(b Buf)
	// Upload copies host values into dst (len(src) <= dst.Len()).
	Upload(dst Buf, src []float32)
	// UploadInt copies host int32 values into dst.
	UploadInt(dst IntBuf, src []int32)
	// AllocBytes returns a zero-filled buffer of n bytes.
	AllocBytes(n int) ByteBuf
	// UploadBytes copies host bytes into dst (len(src) <= dst.Len()).
	UploadBytes(dst ByteBuf, src []uint8)
	// Download copies src into host memory dst, waiting for pending work.
	Download(dst []float32, src Buf)
	// Zero sets every element of b to 0.
	Zero(b Buf)
	// Copy copies src into dst (same length).
	Copy(dst, src Buf)
	// Sync waits for all queued work and reports any asynchronous error.
	Sync() error

	// Linear: out[M,N] = in[M,K] · w[N,K]ᵀ + bias[N] (bias may be nil).
	Linear(out, in, w, bias Buf, M, K, N int)
	// LinearAdd: out[M,N] += in[M,K] · w[N,K]ᵀ (LoRA's up-projection added
	// onto the base layer's output without a temporary).
	LinearAdd(out, in, w Buf, M, K, N int)
	// LinearBackward accumulates dIn[M,K] += dOut·w (or sets it, with
	// SetGrad), dW[N,K] += dOutᵀ·in and dBias[N] += Σ_rows dOut; any of
	// dIn, dW, dBias may be nil.
	LinearBackward(dIn, dW, dBias, dOut, in, w Buf, M, K, N int, mode GradWrite)

	// LayerNorm normalises each of rows rows of C values:
	// out = (in - mean) * rstd * w + b, saving mean[rows] and rstd[rows]
	// (statistics in float32 whatever the compute precision).
	LayerNorm(out, mean, rstd, in, w, b Buf, rows, C int, eps float32)
	// LayerNormBackward accumulates into dIn, dW, dB (any may be nil).
	LayerNormBackward(dIn, dW, dB, dOut, in, w, mean, rstd Buf, rows, C int)

	// AttentionScratchLen is the length of the scratch buffer Attention needs
	// to save for its backward pass (probabilities, or softmax statistics).
	AttentionScratchLen(B, T, NH int) int
	// Attention computes multi-head scaled dot-product attention
	// softmax(q·kᵀ/sqrt(C/NH) [+ causal mask]) · v for q, k, v, out of
	// shape [B,T,C], saving what its backward needs in scratch.
	Attention(out, scratch, q, k, v Buf, B, T, C, NH int, causal bool)
	// AttentionBackward accumulates (or, with SetGrad, sets) dQ, dK, dV.
	AttentionBackward(dQ, dK, dV, dOut, scratch, q, k, v, out Buf, B, T, C, NH int, causal bool, mode GradWrite)

	// Activate: out = act(x), elementwise over n values.
	Activate(act Activation, out, in Buf, n int)
	// ActivateBackward accumulates dIn += dOut * act'(in) (or sets it, with
	// SetGrad).
	ActivateBackward(act Activation, dIn, dOut, in Buf, n int, mode GradWrite)
	// ActivatePacked is Activate that also keeps its input rounded to bf16
	// (nearest even) in packed: n 16-bit values in the first ceil(n/2)
	// float32 slots, value i in bytes 2i..2i+1 (little endian). A backward
	// from it holds half the memory of the fp32 input.
	ActivatePacked(act Activation, out, in, packed Buf, n int)
	// ActivateBackwardPacked is ActivateBackward at the packed inputs.
	ActivateBackwardPacked(act Activation, dIn, dOut, packed Buf, n int, mode GradWrite)

	// Add: out = a + b over n values (out may alias a or b).
	Add(out, a, b Buf, n int)
	// AddScaled: y += alpha * x over n values.
	AddScaled(y, x Buf, alpha float32, n int)
	// Scale: x *= alpha over n values.
	Scale(x Buf, alpha float32, n int)
	// Mul: out = a * b elementwise over n values (out may alias a or b).
	Mul(out, a, b Buf, n int)
	// Dropout: out = in ⊙ mask over n values (out may alias in), where
	// mask[i] is 0 with probability p and 1/(1-p) otherwise, drawn from a
	// counter-based generator of (seed, i) (cpu.DropoutUniform), so results
	// reproduce across backends and the backward replays the mask instead
	// of storing it.
	Dropout(out, in Buf, p float32, seed uint64, n int)
	// DropoutBackward accumulates dIn += dOut ⊙ mask, the mask of Dropout
	// with the same p, seed and n.
	DropoutBackward(dIn, dOut Buf, p float32, seed uint64, n int)

	// EmbedTokens: out[b,t,:] = tok[ids[b,t],:] + pos[t,:] for B×T ids.
	EmbedTokens(out Buf, ids IntBuf, tok, pos Buf, B, T, C int)
	// EmbedTokensBackward accumulates dTok and dPos (either may be nil).
	EmbedTokensBackward(dTok, dPos, dOut Buf, ids IntBuf, B, T, C int)

	// Patchify turns normalised images [B,3,H,W] (H=W=S) into patch rows
	// cols[B*NP, 3*P*P] in the conv weight's (c, ky, kx) order, NP=(S/P)².
	Patchify(cols, pixels Buf, B, S, P int)
	// PatchifyImages is Patchify of B images given as decoded bytes,
	// images[B,S,S,3] (HWC RGB), normalised through lut: channel c's
	// level v becomes lut[c*256+v]. Uploading bytes moves a quarter of the
	// data of normalised float32 pixels, and the lut makes the values
	// identical to host-side normalisation.
	PatchifyImages(cols Buf, images ByteBuf, lut Buf, B, S, P int)
	// AssembleVision: out[b,0,:] = cls + pos[0]; out[b,1+p,:] = patch[b,p,:] + pos[1+p].
	AssembleVision(out, patch, cls, pos Buf, B, NP, C int)
	// AssembleVisionBackward accumulates dPatch, dCls, dPos (any may be nil).
	AssembleVisionBackward(dPatch, dCls, dPos, dOut Buf, B, NP, C int)

	// GatherRows: out[i,:] = in[idx[i],:] for n rows of C values.
	GatherRows(out, in Buf, idx IntBuf, n, C int)
	// GatherRowsBackward accumulates dIn[idx[i],:] += dOut[i,:].
	GatherRowsBackward(dIn, dOut Buf, idx IntBuf, n, C int)

	// SumSquares returns Σ x² over the first n values (used for global-norm
	// gradient clipping; waits for pending work).
	SumSquares(x Buf, n int) float64
	// AdamW updates param in place from grad with moments m, v:
	// PyTorch's AdamW with bias correction at step t (1-based) and decoupled
	// weight decay param -= lr*weightDecay*param.
	AdamW(param, grad, m, v Buf, n int, lr, beta1, beta2, eps, weightDecay float32, t int)
}

// SumSquaresManyer is an optional capability: Σ x² over several buffers at
// once (bufs[i][:ns[i]]), so global-norm clipping waits for the device once
// per step rather than once per tensor. The result must equal the sum of
// SumSquares over the buffers, in order.
type SumSquaresManyer interface {
	SumSquaresMany(bufs []Buf, ns []int) float64
}

// ManyUpdater is an optional capability: the optimizer's per-tensor
// operations over all parameters at once (one launch on a GPU instead of
// one per tensor). Results must equal the per-buffer operations exactly.
type ManyUpdater interface {
	// ScaleMany: Scale(b, alpha, b.Len()) for every buffer.
	ScaleMany(bufs []Buf, alpha float32)
	// AdamWMany: AdamW(params[i], grads[i], m[i], v[i], params[i].Len(),
	// lr, beta1, beta2, eps, weightDecay[i], t) for every i.
	AdamWMany(params, grads, m, v []Buf, weightDecay []float32, lr, beta1, beta2, eps float32, t int)
}

// HostAllocator is an optional capability: page-locked host memory, from
// which UploadBytes starts a DMA and returns without the host copying or
// waiting. Fill such memory, upload it, and leave it unchanged until the
// backend's next wait (Download, Sync), when the copy is done.
type HostAllocator interface {
	AllocHostBytes(n int) ([]byte, error)
	FreeHostBytes(b []byte)
}

// HostBytes returns n bytes for uploading to be: page-locked when be is a
// HostAllocator (and the allocation succeeds), else ordinary memory. Pass
// the result to FreeHostBytes when done.
func HostBytes(be Backend, n int) []byte {
	if h, ok := be.(HostAllocator); ok && n > 0 {
		if b, err := h.AllocHostBytes(n); err == nil {
			return b
		}
	}
	return make([]byte, n)
}

// FreeHostBytes releases memory from HostBytes (ordinary memory is left to
// the garbage collector).
func FreeHostBytes(be Backend, b []byte) {
	if h, ok := be.(HostAllocator); ok {
		h.FreeHostBytes(b)
	}
}

// BF16Activations is an optional capability: a backend that computes in
// bf16 says so, and the model then keeps some saved activations as packed
// bf16 values (ActivatePacked), as its products round them anyway.
type BF16Activations interface {
	BF16Activations() bool
}

// PackedLen is the number of float32 slots holding n packed bf16 values.
func PackedLen(n int) int { return (n + 1) / 2 }
