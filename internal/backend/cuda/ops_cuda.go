//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/clipline/clipline/internal/backend"
)

// ---- matrix products ----------------------------------------------------
//
// Row-major X[r, c] is column-major Xᵀ, so each product below is written for
// cuBLAS on the transposed matrices:
//   out[M,N] = in[M,K]·w[N,K]ᵀ   is  outᵀ[N,M] = op_T(w)[N,K] · inᵀ[K,M]
//   dIn[M,K] += dOut[M,N]·w[N,K] is  dInᵀ[K,M] += wᵀ[K,N] · dOutᵀ[N,M]
//   dW[N,K] += dOutᵀ·in          is  dWᵀ[K,N] += inᵀ[K,M] · op_T(dOutᵀ)[M,N]

// gemm runs one product and records a failure.
func (b *Backend) gemm(ta, tb, m, n, k int, A uintptr, lda int, B uintptr, ldb int, beta float32, C uintptr, ldc int, ab int) {
	b.gemmC(ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc, ab, b.computeType(ab))
}

// gemmC is gemm with an explicit cuBLAS compute type.
func (b *Backend) gemmC(ta, tb, m, n, k int, A uintptr, lda int, B uintptr, ldb int, beta float32, C uintptr, ldc int, ab, compute int) {
	checkI32("gemm dimension", m)
	checkI32("gemm dimension", n)
	checkI32("gemm dimension", k)
	b.spanBegin("(gemm)")
	b.fail(b.g.gemm(ta, tb, m, n, k, 1, A, lda, B, ldb, beta, C, ldc, ab, compute))
	b.spanEnd()
}

// skinnyDim: in bf16 mode a product whose inner or output width is at most
// this (LoRA's rank-r products) multiplies the fp32 buffers on TF32 tensor
// cores instead. Such products are memory-bound: converting an [M, 768]
// operand to bf16 first (read 4 bytes, write 2, read 2 per element) costs
// more than reading it once in fp32, and TF32 keeps more bits than bf16.
const skinnyDim = 32

// useBF16 says whether a product with inner size K and output width N runs
// on bf16 copies of its operands.
func (b *Backend) useBF16(K, N int) bool { return b.opts.BF16 && min(K, N) > skinnyDim }

// f32Compute is the compute type of a product on fp32 operands: the mode's,
// or TF32 for bf16 mode's skinny products.
func (b *Backend) f32Compute() int {
	if b.opts.BF16 {
		return compute32FFastTF32
	}
	return b.opts.computeType()
}

// computeType is the cuBLAS compute type of a product of operands of type ab.
func (b *Backend) computeType(ab int) int {
	if ab == dtF32 {
		return b.opts.computeType()
	}
	return compute32F
}

// Linear computes out[M,N] = in[M,K]·w[N,K]ᵀ + bias[N].
func (b *Backend) Linear(out, in, w, bias backend.Buf, M, K, N int) {
	o, x, wt, bs := asBuf(out), asBuf(in), asBuf(w), asBuf(bias)
	need("Linear out", o, M*N)
	need("Linear in", x, M*K)
	need("Linear w", wt, N*K)
	needOpt("Linear bias", bs, N)
	if M == 0 || N == 0 {
		return
	}
	b.enterOp("Linear")
	defer b.leaveOp()
	op := wr(o)
	if K == 0 {
		b.fail(b.g.zero32(op, M*N))
	} else {
		wp, xp, ab, ct := b.linearOperands(x, wt, M, K, N)
		if bs != nil && b.fused {
			checkI32("gemm dimension", M)
			b.spanBegin("(gemm+bias)")
			ok, err := b.g.gemmBias(opT, opN, N, M, K, wp, K, xp, K, op, N, rd(bs), ab, ct)
			b.spanEnd()
			if ok {
				return
			}
			if err != nil { // this shape falls back to GEMM + add_bias_rows
				b.fusedMiss = err
			}
		}
		b.gemmC(opT, opN, N, M, K, wp, K, xp, K, 0, op, N, ab, ct)
	}
	if bs != nil {
		b.a().p(op).p(rd(bs)).i(M).i(N)
		b.run(b.k.addBias, elementwise1D(M*N))
	}
}

// linearOperands returns the operands of in[M,K]·w[N,K]ᵀ as the product
// reads them (bf16 copies in bf16 mode), their type and the compute type.
func (b *Backend) linearOperands(x, wt *devBuf, M, K, N int) (wp, xp uintptr, ab, ct int) {
	if b.useBF16(K, N) {
		return b.bf16Weight(wt, N*K, 1), b.bf16Act(0, x, M*K), dtBF16, compute32F
	}
	return rd(wt), rd(x), dtF32, b.f32Compute()
}

// LinearAdd accumulates out[M,N] += in[M,K]·w[N,K]ᵀ (beta = 1).
func (b *Backend) LinearAdd(out, in, w backend.Buf, M, K, N int) {
	o, x, wt := asBuf(out), asBuf(in), asBuf(w)
	need("LinearAdd out", o, M*N)
	need("LinearAdd in", x, M*K)
	need("LinearAdd w", wt, N*K)
	if M == 0 || N == 0 || K == 0 {
		return
	}
	b.enterOp("LinearAdd")
	defer b.leaveOp()
	wp, xp, ab, ct := b.linearOperands(x, wt, M, K, N)
	b.gemmC(opT, opN, N, M, K, wp, K, xp, K, 1, wr(o), N, ab, ct)
}

// LinearBackward accumulates (or with SetGrad sets, a product with beta 0)
// dIn = dOut·w, and accumulates dW += dOutᵀ·in, dBias += Σ dOut.
func (b *Backend) LinearBackward(dIn, dW, dBias, dOut, in, w backend.Buf, M, K, N int, mode backend.GradWrite) {
	di, dw, db := asBuf(dIn), asBuf(dW), asBuf(dBias)
	g, x, wt := asBuf(dOut), asBuf(in), asBuf(w)
	need("LinearBackward dOut", g, M*N)
	needOpt("LinearBackward dIn", di, M*K)
	needOpt("LinearBackward dW", dw, N*K)
	needOpt("LinearBackward dBias", db, N)
	if di != nil {
		need("LinearBackward w", wt, N*K)
	}
	if dw != nil {
		need("LinearBackward in", x, M*K)
	}
	setEmpty := N == 0 && di != nil && mode == backend.SetGrad && K > 0
	if M == 0 || (N == 0 && !setEmpty) {
		return
	}
	b.enterOp("LinearBackward")
	defer b.leaveOp()
	if setEmpty {
		b.fail(b.g.zero32(wr(di), M*K)) // an empty product
		return
	}
	beta := float32(1)
	if mode == backend.SetGrad {
		beta = 0
	}
	if K > 0 && (di != nil || dw != nil) {
		if b.useBF16(K, N) {
			gp := b.bf16Act(0, g, M*N)
			if di != nil {
				wp := b.bf16Weight(wt, N*K, 1)
				b.gemm(opN, opN, K, M, N, wp, K, gp, N, beta, wr(di), K, dtBF16)
			}
			if dw != nil {
				xp := b.bf16Act(1, x, M*K)
				b.gemm(opN, opT, K, N, M, xp, K, gp, N, 1, wr(dw), K, dtBF16)
			}
		} else {
			ct := b.f32Compute()
			if di != nil {
				b.gemmC(opN, opN, K, M, N, rd(wt), K, rd(g), N, beta, wr(di), K, dtF32, ct)
			}
			if dw != nil {
				b.gemmC(opN, opT, K, N, M, rd(x), K, rd(g), N, 1, wr(dw), K, dtF32, ct)
			}
		}
	}
	if db != nil {
		b.sumRows(db, g, M, N, int64(N))
	}
}

// sumRows queues dst[j] += Σ_{r<rows} src[r*stride + j] for j < n.
func (b *Backend) sumRows(dst, src *devBuf, rows, n int, stride int64) {
	b.a().p(wr(dst)).p(rd(src)).i(rows).i(n).i64(stride)
	b.run(b.k.sumRows, rowReduce(rows, n))
}

// ---- layer norm ---------------------------------------------------------

// LayerNorm normalises rows of C values, saving mean and rstd.
func (b *Backend) LayerNorm(out, mean, rstd, in, w, bias backend.Buf, rows, C int, eps float32) {
	o, mu, rs, x, wt, bs := asBuf(out), asBuf(mean), asBuf(rstd), asBuf(in), asBuf(w), asBuf(bias)
	need("LayerNorm out", o, rows*C)
	need("LayerNorm in", x, rows*C)
	needOpt("LayerNorm mean", mu, rows)
	needOpt("LayerNorm rstd", rs, rows)
	needOpt("LayerNorm w", wt, C)
	needOpt("LayerNorm b", bs, C)
	if C == 0 {
		panic("cuda: LayerNorm with C = 0")
	}
	b.enterOp("LayerNorm")
	defer b.leaveOp()
	op := wr(o)
	b.a().p(op).p(wr(mu)).p(wr(rs)).p(rd(x)).p(rd(wt)).p(rd(bs)).i(rows).i(C).f(eps).p(b.bf16Companion(o, rows*C))
	b.run(b.k.lnF, warpPerRow(rows))
}

// LayerNormBackward accumulates dIn, dW, dB from the saved statistics.
func (b *Backend) LayerNormBackward(dIn, dW, dB, dOut, in, w, mean, rstd backend.Buf, rows, C int) {
	di, dw, db := asBuf(dIn), asBuf(dW), asBuf(dB)
	g, x, wt, mu, rs := asBuf(dOut), asBuf(in), asBuf(w), asBuf(mean), asBuf(rstd)
	need("LayerNormBackward dOut", g, rows*C)
	need("LayerNormBackward in", x, rows*C)
	need("LayerNormBackward mean", mu, rows)
	need("LayerNormBackward rstd", rs, rows)
	needOpt("LayerNormBackward dIn", di, rows*C)
	needOpt("LayerNormBackward dW", dw, C)
	needOpt("LayerNormBackward dB", db, C)
	needOpt("LayerNormBackward w", wt, C)
	b.enterOp("LayerNormBackward")
	defer b.leaveOp()
	if di != nil {
		dp := wr(di)
		b.a().p(dp).p(rd(g)).p(rd(x)).p(rd(wt)).p(rd(mu)).p(rd(rs)).i(rows).i(C).p(b.bf16Companion(di, rows*C))
		b.run(b.k.lnDX, warpPerRow(rows))
	}
	if dw != nil || db != nil {
		b.a().p(wr(dw)).p(wr(db)).p(rd(g)).p(rd(x)).p(rd(mu)).p(rd(rs)).i(rows).i(C)
		b.run(b.k.lnDWDB, rowReduce(rows, C))
	}
}

// ---- attention ----------------------------------------------------------

// AttentionScratchLen is 2·B·NH·T: the log-sum-exp of every softmax row
// (forward) and D = dOut·out per row (backward's working space), so
// attention never materialises the T×T probabilities.
func (b *Backend) AttentionScratchLen(B, T, NH int) int { return attnScratchLen(B, T, NH) }

func (b *Backend) attnLaunch(B, T, C, NH int) (launchDims, bool, float32) {
	if NH <= 0 || C%NH != 0 {
		panic(fmt.Sprintf("cuda: Attention with C=%d not divisible by NH=%d", C, NH))
	}
	hd := C / NH
	l, kv := attention(B, T, NH, hd, b.g.maxSmem)
	if l.Smem > b.g.maxSmem {
		panic(fmt.Sprintf("cuda: Attention with T=%d, head size %d needs %d bytes of shared memory per block; the GPU allows %d",
			T, hd, l.Smem, b.g.maxSmem))
	}
	return l, kv, float32(1 / math.Sqrt(float64(hd)))
}

func flag(v bool) int {
	if v {
		return 1
	}
	return 0
}

// Attention computes softmax(q·kᵀ/sqrt(hd) [+ causal mask])·v per head and
// saves the log-sum-exp of each row in scratch.
func (b *Backend) Attention(out, scratch, q, k, v backend.Buf, B, T, C, NH int, causal bool) {
	o, s, qb, kb, vb := asBuf(out), asBuf(scratch), asBuf(q), asBuf(k), asBuf(v)
	n := B * T * C
	need("Attention out", o, n)
	need("Attention q", qb, n)
	need("Attention k", kb, n)
	need("Attention v", vb, n)
	need("Attention scratch", s, attnScratchLen(B, T, NH))
	l, kv, scale := b.attnLaunch(B, T, C, NH)
	b.enterOp("Attention")
	defer b.leaveOp()
	if fwd, _, ok := b.attnTC(B, T, C, NH, qb, kb, vb); ok {
		op := wr(o)
		b.a().p(op).p(wr(s)).p(rd(qb)).p(rd(kb)).p(rd(vb)).i(B).i(T).i(C).i(NH).i(flag(causal)).f(scale).
			p(b.bf16Companion(o, n)) // for out_proj's product
		b.run(b.k.attnTCF, fwd)
		return
	}
	if l64, ok := b.attn64(B, T, C, NH, o, qb, kb, vb); ok {
		b.a().p(wr(o)).p(wr(s)).p(rd(qb)).p(rd(kb)).p(rd(vb)).i(B).i(T).i(C).i(NH).i(flag(causal)).f(scale)
		b.run(b.k.attn64F, l64)
		return
	}
	b.a().p(wr(o)).p(wr(s)).p(rd(qb)).p(rd(kb)).p(rd(vb)).i(B).i(T).i(C).i(NH).i(flag(causal)).f(scale).i(flag(kv))
	b.run(b.k.attnF, l)
}

// attnTC returns the launches of the tensor-core kernels when they apply:
// a bf16 mode (Backend.tcAttention), head size 64, q, k, v (and dOut) 16-byte
// aligned, shared memory enough. The forward and backward decide alike, so
// the backward recomputes the forward's scores.
func (b *Backend) attnTC(B, T, C, NH int, bufs ...*devBuf) (fwd, bwd launchDims, ok bool) {
	if !b.tcAttention || C != 64*NH || C%4 != 0 {
		return fwd, bwd, false
	}
	for _, x := range bufs {
		if !aligned16(x.addr()) {
			return fwd, bwd, false
		}
	}
	return attentionTC(B, T, NH, b.g.maxSmem)
}

// attn64 returns the launch of the head-size-64 kernels when they apply:
// head size 64, every buffer 16-byte aligned, shared memory enough.
func (b *Backend) attn64(B, T, C, NH int, bufs ...*devBuf) (launchDims, bool) {
	if C != 64*NH || C%4 != 0 {
		return launchDims{}, false
	}
	for _, x := range bufs {
		if x != nil && !aligned16(x.addr()) {
			return launchDims{}, false
		}
	}
	return attention64(B, T, NH, b.g.maxSmem)
}

// AttentionBackward accumulates (or with SetGrad sets) dQ, dK, dV, recomputing the probabilities
// from q, k and the saved log-sum-exp. It overwrites the second half of
// scratch (D), never the first, so it may run again on the same scratch.
func (b *Backend) AttentionBackward(dQ, dK, dV, dOut, scratch, q, k, v, out backend.Buf, B, T, C, NH int, causal bool, mode backend.GradWrite) {
	dq, dk, dv := asBuf(dQ), asBuf(dK), asBuf(dV)
	g, s, qb, kb, vb, o := asBuf(dOut), asBuf(scratch), asBuf(q), asBuf(k), asBuf(v), asBuf(out)
	n := B * T * C
	for _, x := range []struct {
		name string
		b    *devBuf
	}{{"dOut", g}, {"q", qb}, {"k", kb}, {"v", vb}, {"out", o}} {
		need("AttentionBackward "+x.name, x.b, n)
	}
	needOpt("AttentionBackward dQ", dq, n)
	needOpt("AttentionBackward dK", dk, n)
	needOpt("AttentionBackward dV", dv, n)
	need("AttentionBackward scratch", s, attnScratchLen(B, T, NH))
	if dq == nil && dk == nil && dv == nil {
		return
	}
	l, kv, scale := b.attnLaunch(B, T, C, NH)
	bnt := B * NH * T
	lse := s.Slice(0, bnt).(*devBuf)
	D := s.Slice(bnt, bnt).(*devBuf)
	acc := flag(mode == backend.AddGrad)
	b.enterOp("AttentionBackward")
	defer b.leaveOp()
	b.a().p(wr(D)).p(rd(g)).p(rd(o)).i(B).i(T).i(C).i(NH)
	b.run(b.k.attnDelta, warpPerRow(bnt))
	if _, bwd, ok := b.attnTC(B, T, C, NH, qb, kb, vb, g); ok {
		b.a().p(wr(dq)).p(wr(dk)).p(wr(dv)).p(rd(g)).p(rd(lse)).p(rd(D)).p(rd(qb)).p(rd(kb)).p(rd(vb)).
			i(B).i(T).i(C).i(NH).i(flag(causal)).f(scale).i(acc)
		b.run(b.k.attnTCB, bwd)
		return
	}
	if l64, ok := b.attn64(B, T, C, NH, dq, dk, dv, g, qb, kb, vb); ok {
		if dq != nil {
			b.a().p(wr(dq)).p(rd(g)).p(rd(lse)).p(rd(D)).p(rd(qb)).p(rd(kb)).p(rd(vb)).
				i(B).i(T).i(C).i(NH).i(flag(causal)).f(scale).i(acc)
			b.run(b.k.attn64DQ, l64)
		}
		if dk != nil || dv != nil {
			b.a().p(wr(dk)).p(wr(dv)).p(rd(g)).p(rd(lse)).p(rd(D)).p(rd(qb)).p(rd(kb)).p(rd(vb)).
				i(B).i(T).i(C).i(NH).i(flag(causal)).f(scale).i(acc)
			b.run(b.k.attn64DKDV, l64)
		}
		return
	}
	if dq != nil {
		b.a().p(wr(dq)).p(rd(g)).p(rd(lse)).p(rd(D)).p(rd(qb)).p(rd(kb)).p(rd(vb)).
			i(B).i(T).i(C).i(NH).i(flag(causal)).f(scale).i(flag(kv)).i(acc)
		b.run(b.k.attnDQ, l)
	}
	if dk != nil || dv != nil {
		b.a().p(wr(dk)).p(wr(dv)).p(rd(g)).p(rd(lse)).p(rd(D)).p(rd(qb)).p(rd(kb)).p(rd(vb)).
			i(B).i(T).i(C).i(NH).i(flag(causal)).f(scale).i(flag(kv)).i(acc)
		b.run(b.k.attnDKDV, l)
	}
}

// ---- elementwise --------------------------------------------------------

// actArg is act as the activation kernels number it (kernels/clipline.cu's
// ACT_* constants follow backend.Activation).
func actArg(op string, act backend.Activation) int {
	if act < backend.QuickGELU || act > backend.GELUTanh {
		panic(fmt.Sprintf("cuda.%s: unknown activation %v", op, act))
	}
	return int(act)
}

// Activate computes out = act(x).
func (b *Backend) Activate(act backend.Activation, out, in backend.Buf, n int) {
	b.activate("Activate", act, out, in, nil, n)
}

// ActivatePacked computes Activate and keeps its input as packed bf16.
func (b *Backend) ActivatePacked(act backend.Activation, out, in, packed backend.Buf, n int) {
	pk := asBuf(packed)
	need("ActivatePacked packed", pk, backend.PackedLen(n))
	b.activate("ActivatePacked", act, out, in, pk, n)
}

func (b *Backend) activate(op string, act backend.Activation, out, in backend.Buf, packed *devBuf, n int) {
	a := actArg(op, act)
	o, x := asBuf(out), asBuf(in)
	need(op+" out", o, n)
	need(op+" in", x, n)
	b.enterOp(op)
	defer b.leaveOp()
	op32, xp := wr(o), rd(x)
	o16 := b.bf16Companion(o, n) // after the write is recorded, as its copy is of the new values
	l, vec := vectorized(n, op32, xp)
	b.a().p(op32).p(xp).i(n).i(flag(vec)).p(o16).p(wr(packed)).i(a)
	b.run(b.k.actF, l)
}

// ActivateBackward accumulates (or with SetGrad sets) dIn = dOut·act'(in).
func (b *Backend) ActivateBackward(act backend.Activation, dIn, dOut, in backend.Buf, n int, mode backend.GradWrite) {
	x := asBuf(in)
	if dIn != nil {
		need("ActivateBackward in", x, n)
	}
	b.activateBackward("ActivateBackward", act, dIn, dOut, x, nil, n, mode)
}

// ActivateBackwardPacked is ActivateBackward at packed bf16 inputs.
func (b *Backend) ActivateBackwardPacked(act backend.Activation, dIn, dOut, packed backend.Buf, n int, mode backend.GradWrite) {
	pk := asBuf(packed)
	if dIn != nil {
		need("ActivateBackwardPacked packed", pk, backend.PackedLen(n))
	}
	b.activateBackward("ActivateBackwardPacked", act, dIn, dOut, nil, pk, n, mode)
}

func (b *Backend) activateBackward(op string, act backend.Activation, dIn, dOut backend.Buf, x, packed *devBuf, n int, mode backend.GradWrite) {
	a := actArg(op, act)
	di, g := asBuf(dIn), asBuf(dOut)
	if di == nil {
		return
	}
	need(op+" dIn", di, n)
	need(op+" dOut", g, n)
	b.enterOp(op)
	defer b.leaveOp()
	dp, gp, xp := wr(di), rd(g), rd(x)
	l, vec := vectorized(n, dp, gp, xp)
	if packed != nil {
		l, vec = elementwise1D(n), false
	}
	b.a().p(dp).p(gp).p(xp).i(n).i(flag(vec)).i(flag(mode == backend.AddGrad)).p(b.bf16Companion(di, n)).p(rd(packed)).i(a)
	b.run(b.k.actB, l)
}

// BF16Activations reports a bf16 mode (backend.BF16Activations): the model
// then keeps its MLP's saved inputs as packed bf16.
func (b *Backend) BF16Activations() bool { return b.opts.BF16 || b.opts.BF16Auto }

// Add computes out = a + b.
func (b *Backend) Add(out, x, y backend.Buf, n int) { b.binary("Add", b.k.add, out, x, y, n) }

// binary queues kernel f computing out = x ∘ y over n values.
func (b *Backend) binary(op string, f kfn, out, x, y backend.Buf, n int) {
	o, xb, yb := asBuf(out), asBuf(x), asBuf(y)
	need(op+" out", o, n)
	need(op+" a", xb, n)
	need(op+" b", yb, n)
	b.enterOp(op)
	defer b.leaveOp()
	op32, xp, yp := wr(o), rd(xb), rd(yb)
	l, vec := vectorized(n, op32, xp, yp)
	b.a().p(op32).p(xp).p(yp).i(n).i(flag(vec))
	b.run(f, l)
}

// AddScaled computes y += alpha·x.
func (b *Backend) AddScaled(y, x backend.Buf, alpha float32, n int) {
	yb, xb := asBuf(y), asBuf(x)
	need("AddScaled y", yb, n)
	need("AddScaled x", xb, n)
	b.enterOp("AddScaled")
	defer b.leaveOp()
	yp, xp := wr(yb), rd(xb)
	l, vec := vectorized(n, yp, xp)
	b.a().p(yp).p(xp).f(alpha).i(n).i(flag(vec))
	b.run(b.k.addScaled, l)
}

// Scale computes x *= alpha.
func (b *Backend) Scale(x backend.Buf, alpha float32, n int) {
	xb := asBuf(x)
	need("Scale x", xb, n)
	b.enterOp("Scale")
	defer b.leaveOp()
	xp := wr(xb)
	l, vec := vectorized(n, xp)
	b.a().p(xp).f(alpha).i(n).i(flag(vec))
	b.run(b.k.scale, l)
}

// Mul computes out = a·b elementwise.
func (b *Backend) Mul(out, x, y backend.Buf, n int) { b.binary("Mul", b.k.mul, out, x, y, n) }

// dropout queues out = in⊙mask (or += with acc), the mask drawn in the
// kernel with the CPU backend's generator (cpu.DropoutUniform), so both
// backends drop the same elements.
func (b *Backend) dropout(op string, out, in backend.Buf, p float32, seed uint64, n int, acc bool) {
	o, x := asBuf(out), asBuf(in)
	need(op+" out", o, n)
	need(op+" in", x, n)
	keep := float32(0)
	if p < 1 {
		keep = 1 / (1 - p)
	}
	b.enterOp(op)
	defer b.leaveOp()
	b.a().p(wr(o)).p(rd(x)).f(p).f(keep).u64(seed).i(n).i(flag(acc))
	b.run(b.k.dropout, elementwise1D(n))
}

// Dropout computes out = in⊙mask.
func (b *Backend) Dropout(out, in backend.Buf, p float32, seed uint64, n int) {
	b.dropout("Dropout", out, in, p, seed, n, false)
}

// DropoutBackward accumulates dIn += dOut⊙mask.
func (b *Backend) DropoutBackward(dIn, dOut backend.Buf, p float32, seed uint64, n int) {
	b.dropout("DropoutBackward", dIn, dOut, p, seed, n, true)
}

// ---- embeddings and gathers ---------------------------------------------

// EmbedTokens computes out[b,t,:] = tok[ids[b,t],:] + pos[t,:].
func (b *Backend) EmbedTokens(out backend.Buf, ids backend.IntBuf, tok, pos backend.Buf, B, T, C int) {
	o, id, tk, ps := asBuf(out), asIntBuf(ids), asBuf(tok), asBuf(pos)
	need("EmbedTokens out", o, B*T*C)
	needInt("EmbedTokens ids", id, B*T)
	need("EmbedTokens tok", tk, C)
	need("EmbedTokens pos", ps, T*C)
	b.enterOp("EmbedTokens")
	defer b.leaveOp()
	b.a().p(wr(o)).p(id.addr()).p(rd(tk)).p(rd(ps)).i(B).i(T).i(C)
	b.run(b.k.embF, elementwise1D(B*T*C))
}

// EmbedTokensBackward accumulates dTok[ids] and dPos.
func (b *Backend) EmbedTokensBackward(dTok, dPos, dOut backend.Buf, ids backend.IntBuf, B, T, C int) {
	dt, dp, g, id := asBuf(dTok), asBuf(dPos), asBuf(dOut), asIntBuf(ids)
	need("EmbedTokensBackward dOut", g, B*T*C)
	needInt("EmbedTokensBackward ids", id, B*T)
	needOpt("EmbedTokensBackward dPos", dp, T*C)
	b.enterOp("EmbedTokensBackward")
	defer b.leaveOp()
	if dt != nil {
		b.a().p(wr(dt)).p(rd(g)).p(id.addr()).i(B).i(T).i(C)
		b.run(b.k.embTok, elementwise1D(B*T*C))
	}
	if dp != nil {
		b.sumRows(dp, g, B, T*C, int64(T*C))
	}
}

// Patchify turns images [B,3,S,S] into patch rows [B·NP, 3·P·P].
func (b *Backend) Patchify(cols, pixels backend.Buf, B, S, P int) {
	c, px := asBuf(cols), asBuf(pixels)
	if P <= 0 || S%P != 0 {
		panic(fmt.Sprintf("cuda: Patchify with image size %d not a multiple of patch size %d", S, P))
	}
	need("Patchify cols", c, B*3*S*S)
	need("Patchify pixels", px, B*3*S*S)
	b.enterOp("Patchify")
	defer b.leaveOp()
	b.a().p(wr(c)).p(rd(px)).i(B).i(S).i(P)
	b.run(b.k.patchify, elementwise1D(B*3*S*S))
}

// PatchifyImages normalises uint8 HWC images through lut into patch rows.
func (b *Backend) PatchifyImages(cols backend.Buf, images backend.ByteBuf, lut backend.Buf, B, S, P int) {
	c, img, lt := asBuf(cols), asByteBuf(images), asBuf(lut)
	if P <= 0 || S%P != 0 {
		panic(fmt.Sprintf("cuda: PatchifyImages with image size %d not a multiple of patch size %d", S, P))
	}
	need("PatchifyImages cols", c, B*3*S*S)
	need("PatchifyImages lut", lt, 3*256)
	if img.n < B*S*S*3 {
		panic(fmt.Sprintf("cuda: PatchifyImages images has %d bytes, need %d", img.n, B*S*S*3))
	}
	b.enterOp("PatchifyImages")
	defer b.leaveOp()
	b.a().p(wr(c)).p(img.addr()).p(rd(lt)).i(B).i(S).i(P)
	b.run(b.k.patchU8, elementwise1D(B*3*S*S))
}

// AssembleVision prepends the class token and adds position embeddings.
func (b *Backend) AssembleVision(out, patch, cls, pos backend.Buf, B, NP, C int) {
	o, pt, cl, ps := asBuf(out), asBuf(patch), asBuf(cls), asBuf(pos)
	T := NP + 1
	need("AssembleVision out", o, B*T*C)
	need("AssembleVision patch", pt, B*NP*C)
	need("AssembleVision cls", cl, C)
	need("AssembleVision pos", ps, T*C)
	b.enterOp("AssembleVision")
	defer b.leaveOp()
	b.a().p(wr(o)).p(rd(pt)).p(rd(cl)).p(rd(ps)).i(B).i(NP).i(C)
	b.run(b.k.asmF, elementwise1D(B*T*C))
}

// AssembleVisionBackward accumulates dPatch, dCls and dPos.
func (b *Backend) AssembleVisionBackward(dPatch, dCls, dPos, dOut backend.Buf, B, NP, C int) {
	dpt, dc, dps, g := asBuf(dPatch), asBuf(dCls), asBuf(dPos), asBuf(dOut)
	T := NP + 1
	need("AssembleVisionBackward dOut", g, B*T*C)
	needOpt("AssembleVisionBackward dPatch", dpt, B*NP*C)
	needOpt("AssembleVisionBackward dCls", dc, C)
	needOpt("AssembleVisionBackward dPos", dps, T*C)
	b.enterOp("AssembleVisionBackward")
	defer b.leaveOp()
	if dpt != nil {
		b.a().p(wr(dpt)).p(rd(g)).i(B).i(NP).i(C)
		b.run(b.k.asmPatch, elementwise1D(B*NP*C))
	}
	if dc != nil {
		b.sumRows(dc, g, B, C, int64(T*C))
	}
	if dps != nil {
		b.sumRows(dps, g, B, T*C, int64(T*C))
	}
}

// GatherRows computes out[i,:] = in[idx[i],:].
func (b *Backend) GatherRows(out, in backend.Buf, idx backend.IntBuf, n, C int) {
	o, x, id := asBuf(out), asBuf(in), asIntBuf(idx)
	need("GatherRows out", o, n*C)
	needInt("GatherRows idx", id, n)
	b.enterOp("GatherRows")
	defer b.leaveOp()
	b.a().p(wr(o)).p(rd(x)).p(id.addr()).i(n).i(C)
	b.run(b.k.gatherF, elementwise1D(n*C))
}

// GatherRowsBackward accumulates dIn[idx[i],:] += dOut[i,:].
func (b *Backend) GatherRowsBackward(dIn, dOut backend.Buf, idx backend.IntBuf, n, C int) {
	di, g, id := asBuf(dIn), asBuf(dOut), asIntBuf(idx)
	need("GatherRowsBackward dOut", g, n*C)
	needInt("GatherRowsBackward idx", id, n)
	if di == nil {
		return
	}
	b.enterOp("GatherRowsBackward")
	defer b.leaveOp()
	b.a().p(wr(di)).p(rd(g)).p(id.addr()).i(n).i(C)
	b.run(b.k.gatherB, elementwise1D(n*C))
}

// ---- optimizer ----------------------------------------------------------

// SumSquares returns Σ x² over x[:n] (fp64 partial sums per block, added on
// the host), waiting for the queued work.
func (b *Backend) SumSquares(x backend.Buf, n int) float64 {
	xb := asBuf(x)
	need("SumSquares x", xb, n)
	if n == 0 {
		return 0
	}
	b.enterOp("SumSquares")
	defer b.leaveOp()
	l := reduceBlocks(n)
	b.a().p(b.partials).p(rd(xb)).i(n)
	b.run(b.k.sumSq, l)
	part := b.hostPart[:l.Grid.X]
	b.fail(b.g.dtoh(unsafe.Pointer(&part[0]), b.partials, 8*len(part)))
	b.fail(b.syncStream())
	b.mustBeHealthy("SumSquares")
	s := 0.0
	for _, v := range part {
		s += v
	}
	return s
}

// adamConstants are AdamW's host-side constants at step t, computed as the
// CPU backend does: the step size lr/(1-beta1^t) and sqrt(1-beta2^t).
func adamConstants(lr, beta1, beta2 float32, t int) (stepSize, bc2Sqrt float32) {
	bc1 := 1 - math.Pow(float64(beta1), float64(t))
	bc2 := 1 - math.Pow(float64(beta2), float64(t))
	return float32(float64(lr) / bc1), float32(math.Sqrt(bc2))
}

// AdamW updates param in place (PyTorch's AdamW, bias-corrected at step t).
func (b *Backend) AdamW(param, grad, m, v backend.Buf, n int, lr, beta1, beta2, eps, weightDecay float32, t int) {
	pb, gb, mb, vb := asBuf(param), asBuf(grad), asBuf(m), asBuf(v)
	need("AdamW param", pb, n)
	need("AdamW grad", gb, n)
	need("AdamW m", mb, n)
	need("AdamW v", vb, n)
	stepSize, bc2Sqrt := adamConstants(lr, beta1, beta2, t)
	decay := 1 - lr*weightDecay
	b.enterOp("AdamW")
	defer b.leaveOp()
	b.a().p(wr(pb)).p(rd(gb)).p(wr(mb)).p(wr(vb)).i(n).
		f(beta1).f(beta2).f(1 - beta1).f(1 - beta2).f(eps).f(decay).f(stepSize).f(bc2Sqrt)
	b.run(b.k.adamw, elementwise1D(n))
}

// AdamWMany is AdamW over every parameter in one launch, bit for bit.
func (b *Backend) AdamWMany(params, grads, m, v []backend.Buf, weightDecay []float32, lr, beta1, beta2, eps float32, t int) {
	if len(grads) != len(params) || len(m) != len(params) || len(v) != len(params) || len(weightDecay) != len(params) {
		panic(fmt.Sprintf("cuda: AdamWMany with %d params, %d grads, %d m, %d v, %d decays",
			len(params), len(grads), len(m), len(v), len(weightDecay)))
	}
	desc := make([]int64, 0, 6*len(params))
	widest := 0
	for i, p := range params {
		pb, gb, mb, vb := asBuf(p), asBuf(grads[i]), asBuf(m[i]), asBuf(v[i])
		n := pb.n
		need("AdamWMany grad", gb, n)
		need("AdamWMany m", mb, n)
		need("AdamWMany v", vb, n)
		if n == 0 {
			continue
		}
		decay := 1 - lr*weightDecay[i]
		desc = append(desc, int64(wr(pb)), int64(rd(gb)), int64(wr(mb)), int64(wr(vb)), int64(n),
			int64(math.Float32bits(decay)))
		widest = max(widest, n)
	}
	if len(desc) == 0 {
		return
	}
	stepSize, bc2Sqrt := adamConstants(lr, beta1, beta2, t)
	b.enterOp("AdamWMany")
	defer b.leaveOp()
	b.launchMany(b.k.adamwMany, desc, 6, widest, func() {
		b.f(beta1).f(beta2).f(1 - beta1).f(1 - beta2).f(eps).f(stepSize).f(bc2Sqrt)
	})
}

// ScaleMany computes x *= alpha for every buffer in one launch.
func (b *Backend) ScaleMany(bufs []backend.Buf, alpha float32) {
	desc := make([]int64, 0, 2*len(bufs))
	widest := 0
	for _, x := range bufs {
		xb := asBuf(x)
		if xb.n == 0 {
			continue
		}
		desc = append(desc, int64(wr(xb)), int64(xb.n))
		widest = max(widest, xb.n)
	}
	if len(desc) == 0 {
		return
	}
	b.enterOp("ScaleMany")
	defer b.leaveOp()
	b.launchMany(b.k.scaleMany, desc, 2, widest, func() { b.f(alpha) })
}

// uploadTable queues the upload of a *_many kernel's buffer table into the
// backend's table block and returns its address. Kernels queued earlier
// read the previous table before the copy runs (one stream).
func (b *Backend) uploadTable(desc []int64) uintptr {
	b.manyDesc = b.growScratch(b.manyDesc, &b.manyDescCap, len(desc)*8)
	b.fail(b.g.htod(b.manyDesc, unsafe.Pointer(&desc[0]), len(desc)*8))
	return b.manyDesc
}

// launchMany uploads a *_many kernel's table (rows of width int64s, one
// per buffer, widest elements at most) and launches f over it, maxGridY
// rows at a time; args adds the kernel's arguments after the table.
func (b *Backend) launchMany(f kfn, desc []int64, width, widest int, args func()) {
	table := b.uploadTable(desc)
	rows := len(desc) / width
	for lo := 0; lo < rows; lo += maxGridY {
		b.a().p(table + uintptr(8*width*lo))
		args()
		b.run(f, manyElementwise(widest, min(maxGridY, rows-lo)))
	}
}

// SumSquaresMany returns Σ x² over bufs[i][:ns[i]] with one launch and one
// wait for the device: block x of buffer i's row computes what block x of
// SumSquares' launch on that buffer would, into its own slot; the slots come
// back in one copy and are added on the host in SumSquares' order, so the
// result equals the sum of SumSquares calls bit for bit.
func (b *Backend) SumSquaresMany(bufs []backend.Buf, ns []int) float64 {
	if len(bufs) != len(ns) {
		panic(fmt.Sprintf("cuda: SumSquaresMany with %d buffers and %d lengths", len(bufs), len(ns)))
	}
	// desc holds {address, n, blocks, first slot} per non-empty buffer.
	desc := make([]int64, 0, 4*len(bufs))
	blocks := make([]int, len(bufs))
	total, widest := 0, 0
	for i, x := range bufs {
		xb := asBuf(x)
		need("SumSquaresMany x", xb, ns[i])
		if ns[i] == 0 {
			continue
		}
		blocks[i] = int(reduceBlocks(ns[i]).Grid.X)
		widest = max(widest, blocks[i])
		desc = append(desc, int64(xb.addr()), int64(ns[i]), int64(blocks[i]), int64(total))
		total += blocks[i]
	}
	if total == 0 {
		return 0
	}
	b.enterOp("SumSquaresMany")
	defer b.leaveOp()
	b.manyPart = b.growScratch(b.manyPart, &b.manyCap, total*8)
	if len(b.manyHost) < total {
		b.manyHost = make([]float64, total)
	}
	table := b.uploadTable(desc)
	for lo := 0; lo < len(desc)/4; lo += maxGridY {
		count := min(maxGridY, len(desc)/4-lo)
		b.a().p(b.manyPart).p(table + uintptr(4*8*lo))
		b.run(b.k.sumSqMany, reduceMany(widest, count))
	}
	part := b.manyHost[:total]
	b.fail(b.g.dtoh(unsafe.Pointer(&part[0]), b.manyPart, 8*total))
	b.fail(b.syncStream())
	b.mustBeHealthy("SumSquaresMany")
	s, off := 0.0, 0
	for i := range bufs {
		t := 0.0
		for _, v := range part[off : off+blocks[i]] {
			t += v
		}
		s += t
		off += blocks[i]
	}
	return s
}

// growScratch returns a pool block of at least bytes bytes: ptr when its
// capacity *capBytes suffices, else a new one (ptr goes back to the pool;
// stream order protects work queued on it).
func (b *Backend) growScratch(ptr uintptr, capBytes *int, bytes int) uintptr {
	if ptr != 0 && *capBytes >= bytes {
		return ptr
	}
	if ptr != 0 {
		b.pool.put(ptr)
	}
	p, err := b.pool.get(bytes)
	if err != nil {
		panic(fmt.Sprintf("cuda: out of device memory for a %d-byte scratch block: %v", bytes, err))
	}
	*capBytes = bytes
	return p
}
