package cpu

import (
	"math"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/parallel"
)

// AttentionScratchLen is B·NH·T·T: the CPU backend saves the softmax
// probabilities (masked entries hold 0).
func (be *Backend) AttentionScratchLen(B, T, NH int) int { return B * NH * T * T }

// Attention computes softmax(q·kᵀ/sqrt(C/NH) [+ causal mask])·v per batch
// item and head, in parallel over (b, h) pairs. Each pair is two small
// GEMMs over strided views of q, k, v (rows C apart) on one worker: scores
// S = q·kᵀ into the pair's T×T scratch block, softmax in place, out = P·v.
// In bf16 mode at head size 64 both products round their inputs (q, k,
// the normalised P and v) to bf16; the softmax is fp32.
func (be *Backend) Attention(out, scratch, q, k, v backend.Buf, B, T, C, NH int, causal bool) {
	n := B * T * C
	o := need("Attention", "out", out, n)
	att := need("Attention", "scratch", scratch, B*NH*T*T)
	qd := need("Attention", "q", q, n)
	kd := need("Attention", "k", k, n)
	vd := need("Attention", "v", v, n)
	hs := C / NH
	scale := float32(1 / math.Sqrt(float64(hs)))
	one := be.single()
	bf := be.attentionBF16(hs)
	parallel.Tasks(be.workers, B*NH, func(task, _ int) {
		b, h := task/NH, task%NH
		base := b*T*C + h*hs
		P := att[task*T*T : (task+1)*T*T]
		one.gemmIn(bf, T, T, hs, matrix{qd[base:], C, 1}, matrix{kd[base:], 1, C}, P, T, false, nil)
		be.ops.softmaxRows(P, T, scale, causal)
		one.gemmIn(bf, T, hs, T, matrix{P, T, 1}, matrix{vd[base:], C, 1}, o[base:], C, false, nil)
	})
}

// softmaxRows replaces each row t of the T×T block P with
// softmax(scale·P[t, :tmax]) (tmax = t+1 when causal, else T) and zeros
// past tmax. The exponentials run over the whole block in one vector call.
func (v *vecOps) softmaxRows(P []float32, T int, scale float32, causal bool) {
	for t := range T {
		row := P[t*T : t*T+T]
		tmax := T
		if causal {
			tmax = t + 1
		}
		v.shiftScale(row[:tmax], v.max(row[:tmax]), scale)
		clear(row[tmax:])
	}
	v.exp(P, P)
	for t := range T {
		row := P[t*T : t*T+T]
		tmax := T
		if causal {
			tmax = t + 1
		}
		v.scale(row[:tmax], 1/v.sum(row[:tmax]))
		clear(row[tmax:]) // exp(0) = 1 there
	}
}

// AttentionBackward accumulates (or, with SetGrad, sets) dQ, dK, dV (any may be nil) from the saved
// probabilities P, per (b, h) pair in parallel (pairs own disjoint gradient
// columns): dV += Pᵀ·dO; dP = dO·vᵀ; dS = P∘(dP - rowsum(P∘dP))·scale;
// dQ += dS·k; dK += dSᵀ·q.
func (be *Backend) AttentionBackward(dQ, dK, dV, dOut, scratch, q, k, v, out backend.Buf, B, T, C, NH int, causal bool, mode backend.GradWrite) {
	n := B * T * C
	dQd := opt("AttentionBackward", "dQ", dQ, n)
	dKd := opt("AttentionBackward", "dK", dK, n)
	dVd := opt("AttentionBackward", "dV", dV, n)
	if dQd == nil && dKd == nil && dVd == nil {
		return
	}
	dO := need("AttentionBackward", "dOut", dOut, n)
	att := need("AttentionBackward", "scratch", scratch, B*NH*T*T)
	qd := need("AttentionBackward", "q", q, n)
	kd := need("AttentionBackward", "k", k, n)
	vd := need("AttentionBackward", "v", v, n)
	hs := C / NH
	scale := float32(1 / math.Sqrt(float64(hs)))
	acc := mode == backend.AddGrad
	one := be.single()
	dSs := make([][]float32, be.workers)
	parallel.Tasks(be.workers, B*NH, func(task, w int) {
		b, h := task/NH, task%NH
		base := b*T*C + h*hs
		P := att[task*T*T : (task+1)*T*T]
		if dVd != nil {
			one.gemm(T, hs, T, matrix{P, 1, T}, matrix{dO[base:], C, 1}, dVd[base:], C, acc, nil)
		}
		if dQd == nil && dKd == nil {
			return
		}
		if dSs[w] == nil {
			dSs[w] = make([]float32, T*T)
		}
		dS := dSs[w]
		one.gemm(T, T, hs, matrix{dO[base:], C, 1}, matrix{vd[base:], 1, C}, dS, T, false, nil)
		for t := range T {
			p := P[t*T : t*T+T]
			d := dS[t*T : t*T+T]
			tmax := T
			if causal {
				tmax = t + 1
			}
			be.ops.softmaxBack(d[:tmax], p, be.ops.dot(p[:tmax], d[:tmax]), scale)
			clear(d[tmax:])
		}
		if dQd != nil {
			one.gemm(T, hs, T, matrix{dS, T, 1}, matrix{kd[base:], C, 1}, dQd[base:], C, acc, nil)
		}
		if dKd != nil {
			one.gemm(T, hs, T, matrix{dS, 1, T}, matrix{qd[base:], C, 1}, dKd[base:], C, acc, nil)
		}
	})
}

// single returns a one-worker view of the backend for work nested inside
// a parallel loop.
func (be *Backend) single() *Backend {
	one := *be
	one.workers = 1
	return &one
}

// dot returns Σ a[i]·b[i] with four partial sums (breaks the add chain).
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		aa := a[i : i+4 : i+4]
		bb := b[i : i+4 : i+4]
		s0 += aa[0] * bb[0]
		s1 += aa[1] * bb[1]
		s2 += aa[2] * bb[2]
		s3 += aa[3] * bb[3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpy computes y += alpha·x.
func axpy(alpha float32, x, y []float32) {
	x = x[:len(y)]
	for i, v := range x {
		y[i] += alpha * v
	}
}
