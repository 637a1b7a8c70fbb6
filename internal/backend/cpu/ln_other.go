//go:build !amd64

package cpu

func lnVec(C int) bool { return false }

// Never called: lnVec is false.
func lnRowSum(x []float32) float32                   { panic("unreachable") }
func lnRowSumSqDev(x []float32, m float32) float32   { panic("unreachable") }
func lnRowNorm(out, x, w, b []float32, m, r float32) { panic("unreachable") }
func lnRowBackDots(x, dout, w []float32, m, r float32) (float32, float32) {
	panic("unreachable")
}
func lnRowBackApply(dIn, dW, dB, x, dout, w []float32, m, r, sumD, sumDN float32) {
	panic("unreachable")
}
