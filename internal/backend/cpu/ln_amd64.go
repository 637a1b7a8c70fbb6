package cpu

// Assembly in ln_amd64.s; n is a multiple of 8.

//go:noescape
func sumAVX2(x *float32, n int) float32

//go:noescape
func sumSqDevAVX2(x *float32, n int, m float32) float32

//go:noescape
func lnNormAVX2(out, x, w, b *float32, n int, m, r float32)

//go:noescape
func lnBackDotsAVX2(x, dout, w *float32, n int, m, r float32) (sumD, sumDN float32)

//go:noescape
func lnBackApplyAVX2(dIn, dW, dB, x, dout, w *float32, n int, m, r, sumD, sumDN float32)

// lnVec reports whether rows of C values take the assembly path.
func lnVec(C int) bool { return hasAVX2FMA && C > 0 && C%8 == 0 }

// lnRowStats returns Σx and Σ(x-m)² for m = Σx/len(x), in float32 lanes.
func lnRowSum(x []float32) float32 { return sumAVX2(&x[0], len(x)) }

func lnRowSumSqDev(x []float32, m float32) float32 { return sumSqDevAVX2(&x[0], len(x), m) }

func lnRowNorm(out, x, w, b []float32, m, r float32) {
	_, _, _ = out[len(x)-1], w[len(x)-1], b[len(x)-1]
	lnNormAVX2(&out[0], &x[0], &w[0], &b[0], len(x), m, r)
}

func lnRowBackDots(x, dout, w []float32, m, r float32) (float32, float32) {
	_, _ = dout[len(x)-1], w[len(x)-1]
	return lnBackDotsAVX2(&x[0], &dout[0], &w[0], len(x), m, r)
}

func lnRowBackApply(dIn, dW, dB, x, dout, w []float32, m, r, sumD, sumDN float32) {
	n := len(x)
	_, _, _, _, _ = dIn[n-1], dW[n-1], dB[n-1], dout[n-1], w[n-1]
	lnBackApplyAVX2(&dIn[0], &dW[0], &dB[0], &x[0], &dout[0], &w[0], n, m, r, sumD, sumDN)
}
