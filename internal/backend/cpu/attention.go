package cpu

import (
	"math"

	"github.com/clipline/clipline/internal/backend"
)

// AttentionScratchLen is B·NH·T·T: the CPU backend saves the softmax
// probabilities (masked entries hold 0).
func (be *Backend) AttentionScratchLen(B, T, NH int) int { return B * NH * T * T }

// Attention computes softmax(q·kᵀ/sqrt(C/NH) [+ causal mask])·v per batch
// item and head, in parallel over (b, h) pairs.
func (be *Backend) Attention(out, scratch, q, k, v backend.Buf, B, T, C, NH int, causal bool) {
	n := B * T * C
	o := need("Attention", "out", out, n)
	att := need("Attention", "scratch", scratch, B*NH*T*T)
	qd := need("Attention", "q", q, n)
	kd := need("Attention", "k", k, n)
	vd := need("Attention", "v", v, n)
	hs := C / NH
	scale := float32(1 / math.Sqrt(float64(hs)))
	be.parallelTasks(B*NH, func(task, _ int) {
		b, h := task/NH, task%NH
		base := b*T*C + h*hs
		for t := range T {
			qt := qd[base+t*C : base+t*C+hs]
			row := att[(task*T+t)*T : (task*T+t)*T+T]
			tmax := T
			if causal {
				tmax = t + 1
			}
			maxv := float32(math.Inf(-1))
			for t2 := range tmax {
				s := dot(qt, kd[base+t2*C:base+t2*C+hs]) * scale
				row[t2] = s
				maxv = max(maxv, s)
			}
			var sum float32
			for t2 := range tmax {
				e := float32(math.Exp(float64(row[t2] - maxv)))
				row[t2] = e
				sum += e
			}
			inv := 1 / sum
			for t2 := range tmax {
				row[t2] *= inv
			}
			clear(row[tmax:])
			ot := o[base+t*C : base+t*C+hs]
			clear(ot)
			for t2 := range tmax {
				axpy(row[t2], vd[base+t2*C:base+t2*C+hs], ot)
			}
		}
	})
}

// AttentionBackward accumulates dQ, dK, dV (any may be nil) from the saved
// probabilities. Each (b, h) pair owns disjoint gradient columns, so pairs
// run in parallel without races.
func (be *Backend) AttentionBackward(dQ, dK, dV, dOut, scratch, q, k, v, out backend.Buf, B, T, C, NH int, causal bool) {
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
	datts := make([][]float32, be.workers)
	be.parallelTasks(B*NH, func(task, w int) {
		if datts[w] == nil {
			datts[w] = make([]float32, T)
		}
		datt := datts[w]
		b, h := task/NH, task%NH
		base := b*T*C + h*hs
		for t := range T {
			row := att[(task*T+t)*T : (task*T+t)*T+T]
			tmax := T
			if causal {
				tmax = t + 1
			}
			dot_ := dO[base+t*C : base+t*C+hs]
			for t2 := range tmax {
				vt := vd[base+t2*C : base+t2*C+hs]
				datt[t2] = dot(dot_, vt)
				if dVd != nil {
					axpy(row[t2], dot_, dVd[base+t2*C:base+t2*C+hs])
				}
			}
			if dQd == nil && dKd == nil {
				continue
			}
			// Softmax backward: dpre = p ∘ (datt - Σ p·datt), then the scale.
			var s float32
			for t2 := range tmax {
				s += row[t2] * datt[t2]
			}
			qt := qd[base+t*C : base+t*C+hs]
			for t2 := range tmax {
				ds := row[t2] * (datt[t2] - s) * scale
				if dQd != nil {
					axpy(ds, kd[base+t2*C:base+t2*C+hs], dQd[base+t*C:base+t*C+hs])
				}
				if dKd != nil {
					axpy(ds, qt, dKd[base+t2*C:base+t2*C+hs])
				}
			}
		}
	})
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
