package simd

// PackPanels lays lines of a strided matrix out as the kernels read them:
// "lines" are A's rows or B's columns, element (l, p) is d[l*ls + p*ps],
// and panel q of width w (a kernel's MR for A, NR for B; at most 32) holds
// dst[q*w*kc + p*w + j] = element(l0+q*w+j, p0+p) for the n lines from l0
// and the kc values from p0, zero past the n lines. dst must hold
// RoundUp(n, w)·kc values.
func PackPanels(dst, d []float32, ls, ps, l0, n, p0, kc, w int) {
	var srcs [32][]float32
	for q := 0; q*w < n; q++ {
		panel := dst[q*w*kc : (q+1)*w*kc]
		lines := min(w, n-q*w)
		base := l0 + q*w
		switch {
		case ps == 1 && w <= len(srcs):
			// Lines contiguous along p (A = in, B = Wᵀ, embeddings):
			// gather one element from each line per p, writing the panel
			// in order.
			for j := range lines {
				srcs[j] = d[(base+j)*ls+p0 : (base+j)*ls+p0+kc]
			}
			if lines == w {
				p := packTransVec(panel, d, base*ls+p0, ls, w, kc)
				gatherFull(panel, srcs[:w], p, kc)
			} else {
				for p := range kc {
					out := panel[p*w : p*w+lines]
					for j := range out {
						out[j] = srcs[j][p]
					}
				}
			}
		case ls == 1:
			// Lines contiguous across l (A = dOutᵀ, B = W or in): copies,
			// through a fixed-size temporary so that they compile to
			// inline vector moves rather than memmove calls.
			for p := range kc {
				src := d[(p0+p)*ps+base : (p0+p)*ps+base+lines]
				out := panel[p*w : p*w+lines]
				switch {
				case lines == 32:
					v := *(*[32]float32)(src)
					*(*[32]float32)(out) = v
				case lines == 16:
					v := *(*[16]float32)(src)
					*(*[16]float32)(out) = v
				case lines == 12:
					v := *(*[12]float32)(src)
					*(*[12]float32)(out) = v
				case lines == 6:
					v := *(*[6]float32)(src)
					*(*[6]float32)(out) = v
				case lines == 4:
					v := *(*[4]float32)(src)
					*(*[4]float32)(out) = v
				default:
					copy(out, src)
				}
			}
		default:
			for p := range kc {
				for j := range lines {
					panel[p*w+j] = d[(base+j)*ls+(p0+p)*ps]
				}
			}
		}
		if lines < w {
			for p := range kc {
				clear(panel[p*w+lines : p*w+w])
			}
		}
	}
}

// gatherFull sets panel[p*w+j] = srcs[j][p] for all w = len(srcs) lines
// and p in [p0, kc), four values of p at a time so that each line is read
// 16 bytes at once.
func gatherFull(panel []float32, srcs [][]float32, p0, kc int) {
	w := len(srcs)
	p := p0
	for ; p+4 <= kc; p += 4 {
		out := panel[p*w : p*w+4*w]
		for j, s := range srcs {
			v := (*[4]float32)(s[p : p+4])
			out[j] = v[0]
			out[w+j] = v[1]
			out[2*w+j] = v[2]
			out[3*w+j] = v[3]
		}
	}
	for ; p < kc; p++ {
		out := panel[p*w : p*w+w]
		for j, s := range srcs {
			out[j] = s[p]
		}
	}
}

// RoundUp is x rounded up to a multiple of m.
func RoundUp(x, m int) int { return (x + m - 1) / m * m }
