package cpu

import "math"

// expf is e^x in float32 with under 2 ulp of error (Cephes' expf: x = n·ln2
// + r with |r| <= ln2/2, a degree-6 polynomial for e^r, then 2^n by
// exponent arithmetic), several times faster than math.Exp's float64 path.
// Results below the float32 normal range flush to 0; above it, +Inf.
func expf(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693359375
		ln2lo = -2.12194440e-4
	)
	if x > 88.72283 {
		return float32(math.Inf(1))
	}
	if x < -87.33654 {
		return 0
	}
	// Round to nearest: n = floor(x·log2e + 0.5).
	fn := x*log2e + 0.5
	n := int32(fn)
	if fn < 0 && float32(n) != fn {
		n--
	}
	nf := float32(n)
	r := x - nf*ln2hi - nf*ln2lo
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	e := p*r*r + r + 1
	return e * math.Float32frombits(uint32(n+127)<<23)
}
