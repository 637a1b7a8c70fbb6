package backendtest

import (
	"math"

	"github.com/clipline/clipline/internal/backend"
)

// Naive float64 reference implementations: direct transcriptions of the
// formulas, loop by loop, with no blocking or reuse of intermediate results,
// so that they are easy to check by eye. Their backward passes are checked
// against central differences of their forward passes (refFD).

func refLinear(in, w, bias []float64, M, K, N int) []float64 {
	out := make([]float64, M*N)
	for i := range M {
		for j := range N {
			s := 0.0
			if bias != nil {
				s = bias[j]
			}
			for p := range K {
				s += in[i*K+p] * w[j*K+p]
			}
			out[i*N+j] = s
		}
	}
	return out
}

func refLinearBackward(dOut, in, w []float64, M, K, N int) (dIn, dW, dBias []float64) {
	dIn = make([]float64, M*K)
	dW = make([]float64, N*K)
	dBias = make([]float64, N)
	for i := range M {
		for j := range N {
			g := dOut[i*N+j]
			dBias[j] += g
			for p := range K {
				dIn[i*K+p] += g * w[j*K+p]
				dW[j*K+p] += g * in[i*K+p]
			}
		}
	}
	return dIn, dW, dBias
}

func refLayerNorm(in, w, b []float64, rows, C int, eps float64) (out, mean, rstd []float64) {
	out = make([]float64, rows*C)
	mean = make([]float64, rows)
	rstd = make([]float64, rows)
	for r := range rows {
		x := in[r*C : r*C+C]
		m := 0.0
		for _, v := range x {
			m += v
		}
		m /= float64(C)
		va := 0.0
		for _, v := range x {
			va += (v - m) * (v - m)
		}
		va /= float64(C)
		rs := 1 / math.Sqrt(va+eps)
		for i, v := range x {
			out[r*C+i] = (v-m)*rs*w[i] + b[i]
		}
		mean[r], rstd[r] = m, rs
	}
	return out, mean, rstd
}

// refLayerNormBackward differentiates y = x̂·w + b with x̂ = (x-μ)·rstd:
// dx = rstd·(g - mean(g) - x̂·mean(g·x̂)) where g = dy·w.
func refLayerNormBackward(dOut, in, w []float64, rows, C int, eps float64) (dIn, dW, dB []float64) {
	_, mean, rstd := refLayerNorm(in, w, make([]float64, C), rows, C, eps)
	dIn = make([]float64, rows*C)
	dW = make([]float64, C)
	dB = make([]float64, C)
	for r := range rows {
		xhat := make([]float64, C)
		g := make([]float64, C)
		mg, mgx := 0.0, 0.0
		for i := range C {
			xhat[i] = (in[r*C+i] - mean[r]) * rstd[r]
			g[i] = dOut[r*C+i] * w[i]
			mg += g[i]
			mgx += g[i] * xhat[i]
			dW[i] += dOut[r*C+i] * xhat[i]
			dB[i] += dOut[r*C+i]
		}
		mg /= float64(C)
		mgx /= float64(C)
		for i := range C {
			dIn[r*C+i] = rstd[r] * (g[i] - mg - xhat[i]*mgx)
		}
	}
	return dIn, dW, dB
}

// refAttentionProbs returns P[b,h,t,t2] = softmax over t2 of the scaled,
// masked scores.
func refAttentionProbs(q, k []float64, B, T, C, NH int, causal bool) []float64 {
	hs := C / NH
	scale := 1 / math.Sqrt(float64(hs))
	P := make([]float64, B*NH*T*T)
	for b := range B {
		for h := range NH {
			for t := range T {
				row := P[((b*NH+h)*T+t)*T : ((b*NH+h)*T+t+1)*T]
				mx := math.Inf(-1)
				for t2 := range T {
					if causal && t2 > t {
						continue
					}
					s := 0.0
					for d := range hs {
						s += q[(b*T+t)*C+h*hs+d] * k[(b*T+t2)*C+h*hs+d]
					}
					row[t2] = s * scale
					mx = math.Max(mx, row[t2])
				}
				sum := 0.0
				for t2 := range T {
					if causal && t2 > t {
						row[t2] = 0
						continue
					}
					row[t2] = math.Exp(row[t2] - mx)
					sum += row[t2]
				}
				for t2 := range T {
					row[t2] /= sum
				}
			}
		}
	}
	return P
}

func refAttention(q, k, v []float64, B, T, C, NH int, causal bool) []float64 {
	hs := C / NH
	P := refAttentionProbs(q, k, B, T, C, NH, causal)
	out := make([]float64, B*T*C)
	for b := range B {
		for h := range NH {
			for t := range T {
				for d := range hs {
					s := 0.0
					for t2 := range T {
						s += P[((b*NH+h)*T+t)*T+t2] * v[(b*T+t2)*C+h*hs+d]
					}
					out[(b*T+t)*C+h*hs+d] = s
				}
			}
		}
	}
	return out
}

// refAttentionBackward: with S = QKᵀ·scale, P = softmax(S), O = PV:
// dP = dO·Vᵀ, dV = Pᵀ·dO, dS = P∘(dP - rowsum(dP∘P)), dQ = dS·K·scale,
// dK = dSᵀ·Q·scale (masked entries have P = 0, so they drop out).
func refAttentionBackward(dOut, q, k, v []float64, B, T, C, NH int, causal bool) (dQ, dK, dV []float64) {
	hs := C / NH
	scale := 1 / math.Sqrt(float64(hs))
	P := refAttentionProbs(q, k, B, T, C, NH, causal)
	dQ = make([]float64, B*T*C)
	dK = make([]float64, B*T*C)
	dV = make([]float64, B*T*C)
	at := func(x []float64, b, t, h, d int) int { return (b*T+t)*C + h*hs + d }
	for b := range B {
		for h := range NH {
			p := func(t, t2 int) float64 { return P[((b*NH+h)*T+t)*T+t2] }
			dP := make([]float64, T*T)
			for t := range T {
				for t2 := range T {
					s := 0.0
					for d := range hs {
						s += dOut[at(dOut, b, t, h, d)] * v[at(v, b, t2, h, d)]
					}
					dP[t*T+t2] = s
				}
			}
			for t2 := range T {
				for d := range hs {
					s := 0.0
					for t := range T {
						s += p(t, t2) * dOut[at(dOut, b, t, h, d)]
					}
					dV[at(dV, b, t2, h, d)] = s
				}
			}
			dS := make([]float64, T*T)
			for t := range T {
				rs := 0.0
				for t2 := range T {
					rs += dP[t*T+t2] * p(t, t2)
				}
				for t2 := range T {
					dS[t*T+t2] = p(t, t2) * (dP[t*T+t2] - rs)
				}
			}
			for t := range T {
				for d := range hs {
					sq, sk := 0.0, 0.0
					for t2 := range T {
						sq += dS[t*T+t2] * k[at(k, b, t2, h, d)]
						sk += dS[t2*T+t] * q[at(q, b, t2, h, d)]
					}
					dQ[at(dQ, b, t, h, d)] = sq * scale
					dK[at(dK, b, t, h, d)] = sk * scale
				}
			}
		}
	}
	return dQ, dK, dV
}

// activations lists every backend.Activation, for the suites' loops.
var activations = []backend.Activation{backend.QuickGELU, backend.GELU, backend.GELUTanh}

// refActivate and refActivateBackward follow the definitions in float64:
// quick_gelu x·σ(1.702x); gelu x·Φ(x) = 0.5x·erfc(-x/√2); gelu_pytorch_tanh
// 0.5x·(1 + tanh(u)) = x·σ(2u), u = √(2/π)(x + 0.044715x³).
func refActivate(act backend.Activation, x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		switch act {
		case backend.QuickGELU:
			out[i] = v / (1 + math.Exp(-1.702*v))
		case backend.GELU:
			out[i] = 0.5 * v * math.Erfc(-v/math.Sqrt2)
		case backend.GELUTanh:
			// 0.5(1 + tanh(u)) = σ(2u), which does not cancel for negative x.
			out[i] = v / (1 + math.Exp(-2*tanhArg(v)))
		default:
			panic("no reference for " + act.String())
		}
	}
	return out
}

func refActivateBackward(act backend.Activation, dOut, x []float64) []float64 {
	d := make([]float64, len(x))
	for i, v := range x {
		var g float64
		switch act {
		case backend.QuickGELU:
			s := 1 / (1 + math.Exp(-1.702*v))
			g = s + 1.702*v*s*(1-s)
		case backend.GELU:
			g = 0.5*math.Erfc(-v/math.Sqrt2) + v*math.Exp(-v*v/2)/math.Sqrt(2*math.Pi)
		case backend.GELUTanh:
			s := 1 / (1 + math.Exp(-2*tanhArg(v)))
			du := math.Sqrt(2/math.Pi) * (1 + 3*0.044715*v*v)
			g = s + 2*v*s*(1-s)*du
		default:
			panic("no reference for " + act.String())
		}
		d[i] = dOut[i] * g
	}
	return d
}

func tanhArg(x float64) float64 { return math.Sqrt(2/math.Pi) * (x + 0.044715*x*x*x) }

func refEmbed(ids []int32, tok, pos []float64, B, T, C int) []float64 {
	out := make([]float64, B*T*C)
	for b := range B {
		for t := range T {
			id := int(ids[b*T+t])
			for c := range C {
				out[(b*T+t)*C+c] = tok[id*C+c] + pos[t*C+c]
			}
		}
	}
	return out
}

func refEmbedBackward(dOut []float64, ids []int32, vocab, B, T, C int) (dTok, dPos []float64) {
	dTok = make([]float64, vocab*C)
	dPos = make([]float64, T*C)
	for b := range B {
		for t := range T {
			id := int(ids[b*T+t])
			for c := range C {
				dTok[id*C+c] += dOut[(b*T+t)*C+c]
				dPos[t*C+c] += dOut[(b*T+t)*C+c]
			}
		}
	}
	return dTok, dPos
}

// refPatchify writes patch (py, px) of image b as row b*NP + py*g + px, its
// values in (channel, ky, kx) order like Conv2d's weight [C_out, 3, P, P].
func refPatchify(pixels []float64, B, S, P int) []float64 {
	g := S / P
	NP := g * g
	out := make([]float64, B*NP*3*P*P)
	for b := range B {
		for py := range g {
			for px := range g {
				row := b*NP + py*g + px
				for c := range 3 {
					for ky := range P {
						for kx := range P {
							out[row*3*P*P+c*P*P+ky*P+kx] = pixels[((b*3+c)*S+py*P+ky)*S+px*P+kx]
						}
					}
				}
			}
		}
	}
	return out
}

func refAssembleVision(patch, cls, pos []float64, B, NP, C int) []float64 {
	T := NP + 1
	out := make([]float64, B*T*C)
	for b := range B {
		for c := range C {
			out[(b*T)*C+c] = cls[c] + pos[c]
		}
		for p := range NP {
			for c := range C {
				out[(b*T+1+p)*C+c] = patch[(b*NP+p)*C+c] + pos[(1+p)*C+c]
			}
		}
	}
	return out
}

func refAssembleVisionBackward(dOut []float64, B, NP, C int) (dPatch, dCls, dPos []float64) {
	T := NP + 1
	dPatch = make([]float64, B*NP*C)
	dCls = make([]float64, C)
	dPos = make([]float64, T*C)
	for b := range B {
		for t := range T {
			for c := range C {
				g := dOut[(b*T+t)*C+c]
				dPos[t*C+c] += g
				if t == 0 {
					dCls[c] += g
				} else {
					dPatch[(b*NP+t-1)*C+c] += g
				}
			}
		}
	}
	return dPatch, dCls, dPos
}

func refGather(in []float64, idx []int32, C int) []float64 {
	out := make([]float64, len(idx)*C)
	for i, r := range idx {
		copy(out[i*C:(i+1)*C], in[int(r)*C:int(r+1)*C])
	}
	return out
}

func refGatherBackward(dOut []float64, idx []int32, rowsIn, C int) []float64 {
	d := make([]float64, rowsIn*C)
	for i, r := range idx {
		for c := range C {
			d[int(r)*C+c] += dOut[i*C+c]
		}
	}
	return d
}

// refAdamW is torch.optim.AdamW's documented algorithm in float64.
func refAdamW(p, g, m, v []float64, lr, b1, b2, eps, wd float64, t int) {
	for i := range p {
		p[i] -= lr * wd * p[i]
		m[i] = b1*m[i] + (1-b1)*g[i]
		v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
		mhat := m[i] / (1 - math.Pow(b1, float64(t)))
		vhat := v[i] / (1 - math.Pow(b2, float64(t)))
		p[i] -= lr * mhat / (math.Sqrt(vhat) + eps)
	}
}

// RefDropoutUniform is the dropout generator every backend must reproduce
// exactly, so that masks (and training runs) agree across backends: the
// i-th output of splitmix64 seeded with seed, i.e. splitmix64's mixing
// function of z = seed + (i+1)·0x9E3779B97F4A7C15 (mod 2⁶⁴), whose top 24
// bits give u = (z>>40)·2⁻²⁴ in [0, 1). Element i is dropped when u < p and
// otherwise scaled by 1/(1-p) (float32 arithmetic).
func RefDropoutUniform(seed, i uint64) float32 {
	z := seed + (i+1)*0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	return float32(z>>40) / (1 << 24)
}
