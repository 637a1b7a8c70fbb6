package cpu

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/parallel"
	"github.com/clipline/clipline/internal/simd"
)

// Work sizes below which an operation stays on one goroutine: a goroutine
// costs about a microsecond, so a chunk should be tens of microseconds.
const (
	grainElems = 1 << 15 // elementwise values per chunk
	grainCols  = 64      // columns per chunk for column-parallel reductions
)

// Linear computes out[M,N] = in[M,K]·w[N,K]ᵀ + bias[N] (bias may be nil).
func (be *Backend) Linear(out, in, w, bias backend.Buf, M, K, N int) {
	o := need("Linear", "out", out, M*N)
	x := need("Linear", "in", in, M*K)
	wd := need("Linear", "w", w, N*K)
	bs := opt("Linear", "bias", bias, N)
	if be.linearBF16(K, N) {
		be.linearPacked(o, x, wd, bs, M, K, N, false)
		return
	}
	be.gemm(M, N, K, matrix{x, K, 1}, matrix{wd, 1, K}, o, N, false, bs)
}

// LinearAdd accumulates out[M,N] += in[M,K]·w[N,K]ᵀ.
func (be *Backend) LinearAdd(out, in, w backend.Buf, M, K, N int) {
	o := need("LinearAdd", "out", out, M*N)
	x := need("LinearAdd", "in", in, M*K)
	wd := need("LinearAdd", "w", w, N*K)
	if be.linearBF16(K, N) {
		be.linearPacked(o, x, wd, nil, M, K, N, true)
		return
	}
	be.gemm(M, N, K, matrix{x, K, 1}, matrix{wd, 1, K}, o, N, true, nil)
}

// LinearBackward accumulates (or with SetGrad sets) dIn = dOut·w and
// accumulates dW += dOutᵀ·in, dBias += Σ dOut.
func (be *Backend) LinearBackward(dIn, dW, dBias, dOut, in, w backend.Buf, M, K, N int, mode backend.GradWrite) {
	dO := need("LinearBackward", "dOut", dOut, M*N)
	if dI := opt("LinearBackward", "dIn", dIn, M*K); dI != nil {
		wd := need("LinearBackward", "w", w, N*K)
		if N == 0 && mode == backend.SetGrad {
			clear(dI) // an empty product
		}
		be.gemm(M, K, N, matrix{dO, N, 1}, matrix{wd, K, 1}, dI, K, mode == backend.AddGrad, nil)
	}
	if dWd := opt("LinearBackward", "dW", dW, N*K); dWd != nil {
		x := need("LinearBackward", "in", in, M*K)
		be.gemm(N, K, M, matrix{dO, 1, N}, matrix{x, K, 1}, dWd, K, true, nil)
	}
	if db := opt("LinearBackward", "dBias", dBias, N); db != nil {
		parallel.For(be.workers, N, max(grainCols, grainElems/max(M, 1)), func(_, lo, hi int) {
			acc := db[lo:hi]
			for r := range M {
				row := dO[r*N+lo : r*N+hi]
				for j, v := range row {
					acc[j] += v
				}
			}
		})
	}
}

// LayerNorm normalises rows of C values, saving mean and rstd (either may
// be nil when no backward pass will follow). Statistics are accumulated in
// float32 vector lanes (AVX2, C a multiple of 8) or in float64, and stored
// in float32.
func (be *Backend) LayerNorm(out, mean, rstd, in, w, b backend.Buf, rows, C int, eps float32) {
	o := need("LayerNorm", "out", out, rows*C)
	x := need("LayerNorm", "in", in, rows*C)
	wd := need("LayerNorm", "w", w, C)
	bd := need("LayerNorm", "b", b, C)
	md := opt("LayerNorm", "mean", mean, rows)
	rd := opt("LayerNorm", "rstd", rstd, rows)
	parallel.For(be.workers, rows, max(1, grainElems/max(C, 1)), func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			mf, rf := be.ops.layerNorm(o[r*C:r*C+C], x[r*C:r*C+C], wd, bd, eps)
			if md != nil {
				md[r] = mf
			}
			if rd != nil {
				rd[r] = rf
			}
		}
	})
}

// LayerNormBackward accumulates into dIn, dW, dB (llm.c's formulas). dW and
// dB are summed per worker and then added, so rows run in parallel.
func (be *Backend) LayerNormBackward(dIn, dW, dB, dOut, in, w, mean, rstd backend.Buf, rows, C int) {
	dO := need("LayerNormBackward", "dOut", dOut, rows*C)
	x := need("LayerNormBackward", "in", in, rows*C)
	wd := need("LayerNormBackward", "w", w, C)
	md := need("LayerNormBackward", "mean", mean, rows)
	rd := need("LayerNormBackward", "rstd", rstd, rows)
	dI := opt("LayerNormBackward", "dIn", dIn, rows*C)
	dWd := opt("LayerNormBackward", "dW", dW, C)
	dBd := opt("LayerNormBackward", "dB", dB, C)
	if dI == nil && dWd == nil && dBd == nil {
		return
	}
	grain := max(1, grainElems/max(C, 1))
	chunks := min(be.workers, (rows+grain-1)/grain)
	var partW, partB [][]float32
	if dWd != nil {
		partW = make([][]float32, max(chunks, 1))
	}
	if dBd != nil {
		partB = make([][]float32, max(chunks, 1))
	}
	parallel.For(be.workers, rows, grain, func(wk, lo, hi int) {
		var pw, pb []float32
		if partW != nil {
			pw = make([]float32, C)
			partW[wk] = pw
		}
		if partB != nil {
			pb = make([]float32, C)
			partB[wk] = pb
		}
		for r := lo; r < hi; r++ {
			var di []float32
			if dI != nil {
				di = dI[r*C : r*C+C]
			}
			be.ops.layerNormBackward(di, pw, pb, x[r*C:r*C+C], dO[r*C:r*C+C], wd, md[r], rd[r])
		}
	})
	for _, p := range partW {
		for i, v := range p {
			dWd[i] += v
		}
	}
	for _, p := range partB {
		for i, v := range p {
			dBd[i] += v
		}
	}
}

// numActivations is the number of backend.Activation values.
const numActivations = int(backend.GELUTanh) + 1

// activation checks act and returns its index into the vecOps tables.
func activation(op string, act backend.Activation) int {
	if act < 0 || int(act) >= numActivations {
		panic(fmt.Sprintf("cpu.%s: unknown activation %v", op, act))
	}
	return int(act)
}

// Activate computes out = act(x).
func (be *Backend) Activate(act backend.Activation, out, in backend.Buf, n int) {
	f := be.ops.activate[activation("Activate", act)]
	o := need("Activate", "out", out, n)
	x := need("Activate", "in", in, n)
	parallel.For(be.workers, n, grainElems/4, func(_, lo, hi int) {
		f(o[lo:hi], x[lo:hi])
	})
}

// ActivateBackward accumulates dIn += dOut·act'(x) (QuickGELU's is
// s + 1.702·x·s·(1-s), s = sigmoid(1.702x)).
func (be *Backend) ActivateBackward(act backend.Activation, dIn, dOut, in backend.Buf, n int, mode backend.GradWrite) {
	f := be.ops.activateBackward[activation("ActivateBackward", act)]
	dI := opt("ActivateBackward", "dIn", dIn, n)
	if dI == nil {
		return
	}
	dO := need("ActivateBackward", "dOut", dOut, n)
	x := need("ActivateBackward", "in", in, n)
	parallel.For(be.workers, n, grainElems/4, func(_, lo, hi int) {
		dI, dO, x := dI[lo:hi], dO[lo:hi], x[lo:hi]
		if mode == backend.SetGrad {
			clear(dI) // the chunk is about to be read and written: in cache
		}
		f(dI, dO, x)
	})
}

// ActivatePacked computes Activate and keeps its input as packed bf16.
func (be *Backend) ActivatePacked(act backend.Activation, out, in, packed backend.Buf, n int) {
	be.Activate(act, out, in, n)
	x := need("ActivatePacked", "in", in, n)
	p16 := packed16("ActivatePacked", packed, n)
	parallel.For(be.workers, n, grainElems, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			p16[i] = ToBF16(x[i])
		}
	})
}

// unpackChunk is how many packed inputs ActivateBackwardPacked unpacks at
// a time (on the worker's stack).
const unpackChunk = 1024

// ActivateBackwardPacked is ActivateBackward at packed bf16 inputs,
// unpacked a chunk at a time into the vectorised kernel's input.
func (be *Backend) ActivateBackwardPacked(act backend.Activation, dIn, dOut, packed backend.Buf, n int, mode backend.GradWrite) {
	f := be.ops.activateBackward[activation("ActivateBackwardPacked", act)]
	dI := opt("ActivateBackwardPacked", "dIn", dIn, n)
	if dI == nil {
		return
	}
	dO := need("ActivateBackwardPacked", "dOut", dOut, n)
	p16 := packed16("ActivateBackwardPacked", packed, n)
	parallel.For(be.workers, n, grainElems/4, func(_, lo, hi int) {
		var xs [unpackChunk]float32
		for c := lo; c < hi; c += unpackChunk {
			x := xs[:min(unpackChunk, hi-c)]
			for i := range x {
				x[i] = FromBF16(p16[c+i])
			}
			dI, dO := dI[c:c+len(x)], dO[c:c+len(x)]
			if mode == backend.SetGrad {
				clear(dI)
			}
			f(dI, dO, x)
		}
	})
}

// packed16 returns the n 16-bit values packed in the first
// backend.PackedLen(n) float32s of b.
func packed16(op string, b backend.Buf, n int) []uint16 {
	d := need(op, "packed", b, backend.PackedLen(n))
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&d[0])), n)
}

// ToBF16 rounds f to bf16 (nearest even; NaN stays a quiet NaN) and
// returns its bits (simd.ToBF16, the one rounding every bf16 path uses).
func ToBF16(f float32) uint16 { return simd.ToBF16(f) }

// FromBF16 is the float32 value of bf16 bits h.
func FromBF16(h uint16) float32 { return simd.FromBF16(h) }

func sigmoid(x float32) float32 {
	return 1 / (1 + expf(-x))
}

// Add computes out = a + b.
func (be *Backend) Add(out, a, b backend.Buf, n int) {
	o := need("Add", "out", out, n)
	ad := need("Add", "a", a, n)
	bd := need("Add", "b", b, n)
	parallel.For(be.workers, n, grainElems, func(_, lo, hi int) {
		o, ad, bd := o[lo:hi], ad[lo:hi], bd[lo:hi]
		ad, bd = ad[:len(o)], bd[:len(o)]
		for i := range o {
			o[i] = ad[i] + bd[i]
		}
	})
}

// AddScaled computes y += alpha·x.
func (be *Backend) AddScaled(y, x backend.Buf, alpha float32, n int) {
	yd := need("AddScaled", "y", y, n)
	xd := need("AddScaled", "x", x, n)
	be.wrote(yd)
	parallel.For(be.workers, n, grainElems, func(_, lo, hi int) {
		yd, xd := yd[lo:hi], xd[lo:hi]
		xd = xd[:len(yd)]
		for i := range yd {
			yd[i] += alpha * xd[i]
		}
	})
}

// Scale computes x *= alpha.
func (be *Backend) Scale(x backend.Buf, alpha float32, n int) {
	xd := need("Scale", "x", x, n)
	be.wrote(xd)
	parallel.For(be.workers, n, grainElems, func(_, lo, hi int) {
		xd := xd[lo:hi]
		for i := range xd {
			xd[i] *= alpha
		}
	})
}

// Mul computes out = a·b elementwise.
func (be *Backend) Mul(out, a, b backend.Buf, n int) {
	o := need("Mul", "out", out, n)
	ad := need("Mul", "a", a, n)
	bd := need("Mul", "b", b, n)
	parallel.For(be.workers, n, grainElems, func(_, lo, hi int) {
		o, ad, bd := o[lo:hi], ad[lo:hi], bd[lo:hi]
		ad, bd = ad[:len(o)], bd[:len(o)]
		for i := range o {
			o[i] = ad[i] * bd[i]
		}
	})
}

// dropoutChunk is how many mask values Dropout draws at a time (on the
// worker's stack) before applying them.
const dropoutChunk = 1024

// dropout applies mask[i] = 0 where u_i < p and 1/(1-p) elsewhere,
// u_i = DropoutUniform(seed, i), to in: out = in⊙mask, or out += in⊙mask
// with accumulate. The mask is a pure function of (seed, i), so it does not
// depend on the worker count and other backends reproduce it.
func (be *Backend) dropout(op string, out, in backend.Buf, p float32, seed uint64, n int, accumulate bool) {
	o := need(op, "out", out, n)
	x := need(op, "in", in, n)
	keep := float32(0)
	if p < 1 {
		keep = 1 / (1 - p)
	}
	parallel.For(be.workers, n, grainElems/4, func(_, lo, hi int) {
		var mask [dropoutChunk]float32
		for c := lo; c < hi; c += dropoutChunk {
			m := mask[:min(dropoutChunk, hi-c)]
			be.ops.dropoutMask(m, p, keep, seed, uint64(c))
			o, x := o[c:c+len(m)], x[c:c+len(m)]
			if accumulate {
				for i := range m {
					o[i] += x[i] * m[i]
				}
			} else {
				for i := range m {
					o[i] = x[i] * m[i]
				}
			}
		}
	})
}

// Dropout computes out = in⊙mask (see dropout).
func (be *Backend) Dropout(out, in backend.Buf, p float32, seed uint64, n int) {
	be.dropout("Dropout", out, in, p, seed, n, false)
}

// DropoutBackward accumulates dIn += dOut⊙mask, Dropout's mask.
func (be *Backend) DropoutBackward(dIn, dOut backend.Buf, p float32, seed uint64, n int) {
	be.dropout("DropoutBackward", dIn, dOut, p, seed, n, true)
}

// DropoutUniform is the dropout generator: splitmix64's output function of
// seed + (i+1)·0x9E3779B97F4A7C15 (the i-th splitmix64 output of state
// seed), keeping the top 24 bits as a float32 in [0, 1) (exact).
func DropoutUniform(seed, i uint64) float32 {
	z := seed + (i+1)*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	return float32(z>>40) * (1.0 / (1 << 24))
}

// EmbedTokens computes out[b,t,:] = tok[ids[b,t],:] + pos[t,:].
func (be *Backend) EmbedTokens(out backend.Buf, ids backend.IntBuf, tok, pos backend.Buf, B, T, C int) {
	o := need("EmbedTokens", "out", out, B*T*C)
	id := needInts("EmbedTokens", "ids", ids, B*T)
	tk := Data(tok)
	vocab := len(tk) / max(C, 1)
	pd := need("EmbedTokens", "pos", pos, T*C)
	checkIDs("EmbedTokens", id, vocab)
	parallel.For(be.workers, B*T, max(1, grainElems/max(C, 1)), func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			t := r % T
			e := tk[int(id[r])*C : int(id[r])*C+C]
			p := pd[t*C : t*C+C]
			or := o[r*C : r*C+C]
			e, p = e[:len(or)], p[:len(or)]
			for i := range or {
				or[i] = e[i] + p[i]
			}
		}
	})
}

// EmbedTokensBackward accumulates dTok[ids[b,t],:] += dOut[b,t,:] and
// dPos[t,:] += dOut[b,t,:]. Workers split the C columns, so repeated ids
// never race.
func (be *Backend) EmbedTokensBackward(dTok, dPos, dOut backend.Buf, ids backend.IntBuf, B, T, C int) {
	dO := need("EmbedTokensBackward", "dOut", dOut, B*T*C)
	id := needInts("EmbedTokensBackward", "ids", ids, B*T)
	dT := Data(dTok)
	dP := opt("EmbedTokensBackward", "dPos", dPos, T*C)
	if dT == nil && dP == nil {
		return
	}
	if dT != nil {
		checkIDs("EmbedTokensBackward", id, len(dT)/max(C, 1))
	}
	parallel.For(be.workers, C, max(grainCols, grainElems/max(B*T, 1)), func(_, lo, hi int) {
		for r := range B * T {
			src := dO[r*C+lo : r*C+hi]
			if dT != nil {
				dst := dT[int(id[r])*C+lo : int(id[r])*C+hi]
				for i, v := range src {
					dst[i] += v
				}
			}
			if dP != nil {
				t := r % T
				dst := dP[t*C+lo : t*C+hi]
				for i, v := range src {
					dst[i] += v
				}
			}
		}
	})
}

func checkIDs(op string, ids []int32, vocab int) {
	for i, v := range ids {
		if v < 0 || int(v) >= vocab {
			panic(fmt.Sprintf("cpu: %s: id %d at position %d outside vocabulary of %d", op, v, i, vocab))
		}
	}
}

// PatchifyImages is Patchify of uint8 HWC images normalised through lut.
func (be *Backend) PatchifyImages(cols backend.Buf, images backend.ByteBuf, lut backend.Buf, B, S, P int) {
	g := S / P
	NP := g * g
	K := 3 * P * P
	cd := need("PatchifyImages", "cols", cols, B*NP*K)
	lt := need("PatchifyImages", "lut", lut, 3*256)
	img := Bytes(images)
	if len(img) < B*S*S*3 {
		panic(fmt.Sprintf("cpu: PatchifyImages: images has %d bytes, need %d", len(img), B*S*S*3))
	}
	parallel.For(be.workers, B*NP, max(1, grainElems/max(K, 1)), func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			b, p := r/NP, r%NP
			py, pxi := p/g, p%g
			row := cd[r*K : r*K+K]
			for ky := range P {
				src := img[((b*S+py*P+ky)*S+pxi*P)*3:][:3*P]
				for kx := range P {
					for c := range 3 {
						row[(c*P+ky)*P+kx] = lt[c*256+int(src[3*kx+c])]
					}
				}
			}
		}
	})
}

// Patchify turns images [B,3,S,S] into rows cols[B*NP, 3*P*P] in the conv
// weight's (c, ky, kx) order; patches run row-major over the (S/P)² grid.
func (be *Backend) Patchify(cols, pixels backend.Buf, B, S, P int) {
	g := S / P
	NP := g * g
	K := 3 * P * P
	cd := need("Patchify", "cols", cols, B*NP*K)
	px := need("Patchify", "pixels", pixels, B*3*S*S)
	parallel.For(be.workers, B*NP, max(1, grainElems/max(K, 1)), func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			b, p := r/NP, r%NP
			py, pxi := p/g, p%g
			row := cd[r*K : r*K+K]
			for c := range 3 {
				for ky := range P {
					src := px[((b*3+c)*S+py*P+ky)*S+pxi*P:][:P]
					copy(row[(c*P+ky)*P:(c*P+ky)*P+P], src)
				}
			}
		}
	})
}

// AssembleVision builds out[B,1+NP,C]: the class embedding then the patch
// embeddings, each plus its position embedding.
func (be *Backend) AssembleVision(out, patch, cls, pos backend.Buf, B, NP, C int) {
	T := NP + 1
	o := need("AssembleVision", "out", out, B*T*C)
	pt := need("AssembleVision", "patch", patch, B*NP*C)
	cl := need("AssembleVision", "cls", cls, C)
	pd := need("AssembleVision", "pos", pos, T*C)
	parallel.For(be.workers, B*T, max(1, grainElems/max(C, 1)), func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			b, t := r/T, r%T
			src := cl
			if t > 0 {
				src = pt[(b*NP+t-1)*C : (b*NP+t)*C]
			}
			p := pd[t*C : t*C+C]
			or := o[r*C : r*C+C]
			src, p = src[:len(or)], p[:len(or)]
			for i := range or {
				or[i] = src[i] + p[i]
			}
		}
	})
}

// AssembleVisionBackward accumulates dPatch, dCls and dPos.
func (be *Backend) AssembleVisionBackward(dPatch, dCls, dPos, dOut backend.Buf, B, NP, C int) {
	T := NP + 1
	dO := need("AssembleVisionBackward", "dOut", dOut, B*T*C)
	dPt := opt("AssembleVisionBackward", "dPatch", dPatch, B*NP*C)
	dCl := opt("AssembleVisionBackward", "dCls", dCls, C)
	dP := opt("AssembleVisionBackward", "dPos", dPos, T*C)
	if dPt == nil && dCl == nil && dP == nil {
		return
	}
	// Column split: dCls and dPos sum over the batch without races.
	parallel.For(be.workers, C, max(grainCols, grainElems/max(B*T, 1)), func(_, lo, hi int) {
		for r := range B * T {
			b, t := r/T, r%T
			src := dO[r*C+lo : r*C+hi]
			if dP != nil {
				addTo(dP[t*C+lo:t*C+hi], src)
			}
			if t == 0 {
				if dCl != nil {
					addTo(dCl[lo:hi], src)
				}
			} else if dPt != nil {
				addTo(dPt[(b*NP+t-1)*C+lo:(b*NP+t-1)*C+hi], src)
			}
		}
	})
}

func addTo(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += v
	}
}

// GatherRows computes out[i,:] = in[idx[i],:].
func (be *Backend) GatherRows(out, in backend.Buf, idx backend.IntBuf, n, C int) {
	o := need("GatherRows", "out", out, n*C)
	x := Data(in)
	id := needInts("GatherRows", "idx", idx, n)
	checkIDs("GatherRows", id, len(x)/max(C, 1))
	parallel.For(be.workers, n, max(1, grainElems/max(C, 1)), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			copy(o[i*C:i*C+C], x[int(id[i])*C:int(id[i])*C+C])
		}
	})
}

// GatherRowsBackward accumulates dIn[idx[i],:] += dOut[i,:] (columns split
// across workers, so repeated indices never race).
func (be *Backend) GatherRowsBackward(dIn, dOut backend.Buf, idx backend.IntBuf, n, C int) {
	dI := Data(dIn)
	if dI == nil {
		return
	}
	dO := need("GatherRowsBackward", "dOut", dOut, n*C)
	id := needInts("GatherRowsBackward", "idx", idx, n)
	checkIDs("GatherRowsBackward", id, len(dI)/max(C, 1))
	parallel.For(be.workers, C, max(grainCols, grainElems/max(n, 1)), func(_, lo, hi int) {
		for i := range n {
			addTo(dI[int(id[i])*C+lo:int(id[i])*C+hi], dO[i*C+lo:i*C+hi])
		}
	})
}

// SumSquares returns Σ x² in float64. Chunks are fixed by n and the worker
// count, so the result is reproducible on one machine.
func (be *Backend) SumSquares(x backend.Buf, n int) float64 {
	xd := need("SumSquares", "x", x, n)
	grain := grainElems
	parts := make([]float64, max(1, min(be.workers, (n+grain-1)/grain)))
	parallel.For(be.workers, n, grain, func(w, lo, hi int) {
		var s0, s1, s2, s3 float64
		xd := xd[lo:hi]
		i := 0
		for ; i+4 <= len(xd); i += 4 {
			v := xd[i : i+4 : i+4]
			s0 += float64(v[0]) * float64(v[0])
			s1 += float64(v[1]) * float64(v[1])
			s2 += float64(v[2]) * float64(v[2])
			s3 += float64(v[3]) * float64(v[3])
		}
		for ; i < len(xd); i++ {
			s0 += float64(xd[i]) * float64(xd[i])
		}
		parts[w] = (s0 + s1) + (s2 + s3)
	})
	var s float64
	for _, p := range parts {
		s += p
	}
	return s
}

// AdamW is torch.optim.AdamW's update (foreach=False), in float32 in
// PyTorch's order: decoupled decay, moments, then
// p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps). Bias corrections are
// computed in float64 as Python does.
func (be *Backend) AdamW(param, grad, m, v backend.Buf, n int, lr, beta1, beta2, eps, weightDecay float32, t int) {
	p := need("AdamW", "param", param, n)
	g := need("AdamW", "grad", grad, n)
	md := need("AdamW", "m", m, n)
	vd := need("AdamW", "v", v, n)
	be.wrote(p)
	bc1 := 1 - math.Pow(float64(beta1), float64(t))
	bc2 := 1 - math.Pow(float64(beta2), float64(t))
	stepSize := float32(float64(lr) / bc1)
	bc2Sqrt := float32(math.Sqrt(bc2))
	decay := 1 - lr*weightDecay
	b1c, b2c := 1-beta1, 1-beta2
	parallel.For(be.workers, n, grainElems/2, func(_, lo, hi int) {
		p, g, md, vd := p[lo:hi], g[lo:hi], md[lo:hi], vd[lo:hi]
		g, md, vd = g[:len(p)], md[:len(p)], vd[:len(p)]
		for i := range p {
			gi := g[i]
			mi := beta1*md[i] + b1c*gi
			vi := beta2*vd[i] + b2c*gi*gi
			md[i], vd[i] = mi, vi
			denom := float32(math.Sqrt(float64(vi)))/bc2Sqrt + eps
			p[i] = p[i]*decay - stepSize*mi/denom
		}
	})
}
