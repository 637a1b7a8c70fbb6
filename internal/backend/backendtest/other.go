package backendtest

import (
	"math"
	"testing"

	"github.com/clipline/clipline/internal/backend"
)

func testMemory(t *testing.T, be backend.Backend) {
	if be.Name() == "" {
		t.Errorf("Name is empty")
	}
	a := be.Alloc(10)
	if a.Len() != 10 {
		t.Fatalf("Alloc(10).Len() = %d", a.Len())
	}
	got := make([]float32, 10)
	be.Download(got, a)
	for i, v := range got {
		if v != 0 {
			t.Fatalf("Alloc not zero-filled: [%d] = %g", i, v)
		}
	}
	// Slices share storage, nest, and bound Zero and Copy.
	s := a.Slice(3, 5)
	if s.Len() != 5 {
		t.Fatalf("Slice(3,5).Len() = %d", s.Len())
	}
	be.Upload(s, []float32{1, 2, 3, 4, 5})
	ss := s.Slice(1, 3)
	be.Upload(ss, []float32{20, 30})
	be.Download(got, a)
	want := []float32{0, 0, 0, 1, 20, 30, 4, 5, 0, 0}
	if !equal32(got, want) {
		t.Fatalf("after uploads into slices: %v, want %v", got, want)
	}
	b := be.Alloc(10)
	be.Upload(b, []float32{9, 8, 7, 6, 5, 4, 3, 2, 1, 0})
	be.Copy(a.Slice(0, 3), b.Slice(7, 3))
	be.Zero(a.Slice(5, 2))
	if err := be.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	be.Download(got, a)
	want = []float32{2, 1, 0, 1, 20, 0, 0, 5, 0, 0}
	if !equal32(got, want) {
		t.Fatalf("after Copy and Zero on slices: %v, want %v", got, want)
	}
	part := make([]float32, 4)
	be.Download(part, b.Slice(2, 4))
	if !equal32(part, []float32{7, 6, 5, 4}) {
		t.Fatalf("Download of a slice: %v", part)
	}
	if n := be.AllocInt(7).Len(); n != 7 {
		t.Fatalf("AllocInt(7).Len() = %d", n)
	}
	be.Free(b)
}

func equal32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testLayerNormStats(t *testing.T, be backend.Backend, tol Tolerances) {
	rng := caseRNG("LayerNormStats")
	for _, s := range []struct{ rows, C int }{{9, 31}, {5, 64}} {
		rows, C := s.rows, s.C
		x := randVals(rng, rows*C, -3, 5)
		w := randVals(rng, C, 0.5, 1.5)
		b := randVals(rng, C, -1, 1)
		_, mean, rstd := refLayerNorm(x, w, b, rows, C, lnEps)
		h := newHarness(t, be)
		mb, rb := h.nan("mean", rows), h.nan("rstd", rows)
		be.LayerNorm(h.nan("out", rows*C), mb, rb, h.put64("in", x), h.put64("w", w), h.put64("b", b), rows, C, lnEps)
		compare(t, describe("mean C=%d", C), h.get(mb), mean, tol)
		compare(t, describe("rstd C=%d", C), h.get(rb), rstd, tol)
		// Without statistics (inference) the output is the same.
		out := h.nan("out", rows*C)
		be.LayerNorm(out, nil, nil, h.put64("in", x), h.put64("w", w), h.put64("b", b), rows, C, lnEps)
		want, _, _ := refLayerNorm(x, w, b, rows, C, lnEps)
		compare(t, describe("out without statistics C=%d", C), h.get(out), want, tol)
		h.checkGuards()
	}
}

func testElementwise(t *testing.T, be backend.Backend, tol Tolerances) {
	rng := caseRNG("Elementwise")
	for _, n := range []int{1, 1001, 100003} {
		a := randVals(rng, n, -2, 2)
		b := randVals(rng, n, -2, 2)
		sum, prod := make([]float64, n), make([]float64, n)
		for i := range a {
			sum[i], prod[i] = a[i]+b[i], a[i]*b[i]
		}
		h := newHarness(t, be)

		out := h.nan("out", n)
		be.Add(out, h.put64("a", a), h.put64("b", b), n)
		compare(t, describe("Add n=%d", n), h.get(out), sum, tol)
		ab, bb := h.put64("a", a), h.put64("b", b)
		be.Add(ab, ab, bb, n)
		compare(t, describe("Add into a n=%d", n), h.get(ab), sum, tol)
		ab, bb = h.put64("a", a), h.put64("b", b)
		be.Add(bb, ab, bb, n)
		compare(t, describe("Add into b n=%d", n), h.get(bb), sum, tol)

		out = h.nan("out", n)
		be.Mul(out, h.put64("a", a), h.put64("b", b), n)
		compare(t, describe("Mul n=%d", n), h.get(out), prod, tol)
		ab, bb = h.put64("a", a), h.put64("b", b)
		be.Mul(ab, ab, bb, n)
		compare(t, describe("Mul into a n=%d", n), h.get(ab), prod, tol)
		ab, bb = h.put64("a", a), h.put64("b", b)
		be.Mul(bb, ab, bb, n)
		compare(t, describe("Mul into b n=%d", n), h.get(bb), prod, tol)

		const alpha = -0.375
		yb := h.put64("y", a)
		be.AddScaled(yb, h.put64("x", b), alpha, n)
		want := make([]float64, n)
		for i := range a {
			want[i] = a[i] + alpha*b[i]
		}
		compare(t, describe("AddScaled n=%d", n), h.get(yb), want, tol)

		xb := h.put64("x", a)
		be.Scale(xb, alpha, n)
		for i := range a {
			want[i] = alpha * a[i]
		}
		compare(t, describe("Scale n=%d", n), h.get(xb), want, tol)
		h.checkGuards()
	}
}

// testDropout requires the exact mask of RefDropoutUniform: backends must
// agree element for element so that runs reproduce across them.
func testDropout(t *testing.T, be backend.Backend, tol Tolerances) {
	rng := caseRNG("Dropout")
	n := 10007
	for _, c := range []struct {
		p    float32
		seed uint64
	}{{0.1, 42}, {0.5, 7}, {0, 42}, {0.1, 1<<63 + 12345}} {
		h := newHarness(t, be)
		x := randVals(rng, n, -2, 2)
		for i := range x {
			if x[i] == 0 {
				x[i] = 1 // so that a zero output means a dropped value
			}
		}
		keep := float64(float32(1 / (1 - float64(c.p))))
		want := make([]float64, n)
		dropped := 0
		for i := range want {
			if RefDropoutUniform(c.seed, uint64(i)) >= c.p {
				want[i] = f32(x[i] * keep)
			} else {
				dropped++
			}
		}
		out := h.nan("out", n)
		be.Dropout(out, h.put64("in", x), c.p, c.seed, n)
		got := h.get(out)
		for i := range got {
			if (got[i] == 0) != (want[i] == 0) {
				t.Fatalf("p=%g seed=%d: out[%d] = %g, want %g", c.p, c.seed, i, got[i], want[i])
			}
		}
		compare(t, describe("Dropout p=%g seed=%d", c.p, c.seed), got, want, tol)
		// In place.
		xb := h.put64("x", x)
		be.Dropout(xb, xb, c.p, c.seed, n)
		compare(t, describe("Dropout in place p=%g", c.p), h.get(xb), want, tol)
		// The backward applies the same mask and accumulates.
		acc := randVals(rng, n, -1, 1)
		dIn := h.put64("dIn", acc)
		be.DropoutBackward(dIn, h.put64("dOut", x), c.p, c.seed, n)
		compare(t, describe("DropoutBackward p=%g seed=%d", c.p, c.seed), h.get(dIn), add64(acc, want), tol)
		// 4.5 standard deviations of the binomial count.
		frac := float64(dropped) / float64(n)
		sd := math.Sqrt(float64(c.p) * (1 - float64(c.p)) / float64(n))
		if !(math.Abs(frac-float64(c.p)) <= 4.5*sd+1e-12) {
			t.Errorf("p=%g: dropped fraction %g", c.p, frac)
		}
		h.checkGuards()
	}
	// Different seeds give different masks.
	h := newHarness(t, be)
	ones := make([]float64, n)
	for i := range ones {
		ones[i] = 1
	}
	a, b := h.nan("a", n), h.nan("b", n)
	be.Dropout(a, h.put64("ones", ones), 0.5, 1, n)
	be.Dropout(b, h.put64("ones", ones), 0.5, 2, n)
	if equal32(h.get(a), h.get(b)) {
		t.Errorf("seeds 1 and 2 give the same mask")
	}
	h.checkGuards()
}

// testActivatePacked: the packed forward equals Activate, and the
// backward from the packed inputs equals the reference derivative at the
// inputs rounded to bf16 (nearest even), added or set.
func testActivatePacked(t *testing.T, be backend.Backend, tol Tolerances, act backend.Activation) {
	rng := caseRNG("ActivatePacked/" + act.String())
	for _, n := range []int{1, 1001, 70001} {
		h := newHarness(t, be)
		x := randVals(rng, n, -6, 6)
		xb := h.put64("in", x)
		want, got := h.nan("out", n), h.nan("out", n)
		packed := h.nan("packed", backend.PackedLen(n))
		be.Activate(act, want, xb, n)
		be.ActivatePacked(act, got, xb, packed, n)
		compare(t, describe("%v ActivatePacked n=%d", act, n), h.get(got), h.get64(want), tol)
		rounded := make([]float64, n)
		for i, v := range x {
			rounded[i] = float64(refBF16(float32(v)))
		}
		dOut := randVals(rng, n, -1, 1)
		ref := refActivateBackward(act, dOut, rounded)
		acc := randVals(rng, n, -1, 1)
		dIn := h.put64("dIn", acc)
		be.ActivateBackwardPacked(act, dIn, h.put64("dOut", dOut), packed, n, backend.AddGrad)
		compare(t, describe("%v ActivateBackwardPacked n=%d", act, n), h.get(dIn), add64(acc, ref), tol)
		dSet := h.nan("dIn", n)
		be.ActivateBackwardPacked(act, dSet, h.put64("dOut", dOut), packed, n, backend.SetGrad)
		compare(t, describe("%v ActivateBackwardPacked SetGrad n=%d", act, n), h.get(dSet), ref, tol)
		h.checkGuards()
	}
}

// refBF16 rounds to bf16, nearest even (finite values).
func refBF16(f float32) float32 {
	u := math.Float32bits(f)
	u += 0x7fff + (u>>16)&1
	return math.Float32frombits(u &^ 0xffff)
}

// testLinearAdd checks out += in·wᵀ, at LoRA's skinny shapes among others.
func testLinearAdd(t *testing.T, be backend.Backend, tol Tolerances) {
	rng := caseRNG("LinearAdd")
	for _, s := range []struct{ M, K, N int }{{5, 7, 6}, {203, 300, 37}, {130, 16, 96}, {7, 20, 800}, {1, 4, 3}} {
		h := newHarness(t, be)
		x, w := randVals(rng, s.M*s.K, -1, 1), randVals(rng, s.N*s.K, -1, 1)
		acc := randVals(rng, s.M*s.N, -1, 1)
		out := h.put64("out", acc)
		be.LinearAdd(out, h.put64("in", x), h.put64("w", w), s.M, s.K, s.N)
		want := add64(acc, refLinear(x, w, nil, s.M, s.K, s.N))
		compare(t, describe("LinearAdd M=%d K=%d N=%d", s.M, s.K, s.N), h.get(out), want, tol)
		h.checkGuards()
	}
}

// testPatchifyImages requires PatchifyImages to equal Patchify of the
// pixels normalised through the lut, exactly.
func testPatchifyImages(t *testing.T, be backend.Backend) {
	rng := caseRNG("PatchifyImages")
	for _, s := range []struct{ B, S, P int }{{2, 8, 4}, {1, 12, 3}, {3, 32, 8}} {
		h := newHarness(t, be)
		B, S, P := s.B, s.S, s.P
		img := make([]uint8, B*S*S*3)
		for i := range img {
			img[i] = uint8(rng.IntN(256))
		}
		lut := randVals(rng, 3*256, -2, 2)
		pixels := make([]float64, B*3*S*S)
		for b := range B {
			for y := range S {
				for x := range S {
					for c := range 3 {
						pixels[((b*3+c)*S+y)*S+x] = lut[c*256+int(img[((b*S+y)*S+x)*3+c])]
					}
				}
			}
		}
		want := refPatchify(pixels, B, S, P)
		ib := be.AllocBytes(len(img))
		be.UploadBytes(ib, img)
		cols := h.nan("cols", len(want))
		be.PatchifyImages(cols, ib, h.put64("lut", lut), B, S, P)
		got := h.get(cols)
		for i := range got {
			if float64(got[i]) != want[i] {
				t.Fatalf("B=%d S=%d P=%d: cols[%d] = %g, want %g", B, S, P, i, got[i], want[i])
			}
		}
		h.checkGuards()
	}
}

func testSumSquares(t *testing.T, be backend.Backend, tol Tolerances) {
	rng := caseRNG("SumSquares")
	h := newHarness(t, be)
	for _, n := range []int{0, 1, 1001, 300007} {
		x := randVals(rng, n+5, -1, 1)
		want := 0.0
		for _, v := range x[:n] {
			want += v * v
		}
		// Only the first n values count.
		got := be.SumSquares(h.put64("x", x), n)
		if !(math.Abs(got-want) <= tol.Abs+tol.Rel*math.Abs(want)) {
			t.Errorf("SumSquares n=%d: %g, want %g", n, got, want)
		}
	}
	h.checkGuards()
}

// testAdamW runs three steps (t = 1, 2, 3) with fresh gradients each, with
// and without weight decay. Each step starts the reference from the
// backend's state and compares the parameter change (small next to the
// parameter, so it is judged relatively) and both moments.
func testAdamW(t *testing.T, be backend.Backend, tol Tolerances) {
	rng := caseRNG("AdamW")
	n := 1003
	rel := tol
	rel.Abs = 0
	for _, wd := range []float64{0.01, 0} {
		// The backend gets float32 hyperparameters; so does the reference.
		lr, b1, b2, eps := f32(1e-2), f32(0.9), f32(0.999), f32(1e-8)
		wd := f32(wd)
		h := newHarness(t, be)
		pb := h.put64("param", randVals(rng, n, -1, 1))
		mb, vb := h.put64("m", make([]float64, n)), h.put64("v", make([]float64, n))
		for step := 1; step <= 3; step++ {
			p0, m, v := h.get64(pb), h.get64(mb), h.get64(vb)
			g := randVals(rng, n, -0.5, 0.5)
			g[0] = 0 // a zero gradient still decays and uses its moments
			p := append([]float64(nil), p0...)
			refAdamW(p, g, m, v, lr, b1, b2, eps, wd, step)
			gb := h.put64("grad", g)
			be.AdamW(pb, gb, mb, vb, n, float32(lr), float32(b1), float32(b2), float32(eps), float32(wd), step)
			got := h.get64(pb)
			dGot, dWant := make([]float32, n), make([]float64, n)
			for i := range got {
				dGot[i] = float32(got[i] - p0[i])
				dWant[i] = p[i] - p0[i]
			}
			compare(t, describe("param change wd=%g step %d", wd, step), dGot, dWant, rel)
			compare(t, describe("m wd=%g step %d", wd, step), h.get(mb), m, rel)
			compare(t, describe("v wd=%g step %d", wd, step), h.get(vb), v, rel)
			if got := h.get64(gb); !equal64(got, g) {
				t.Errorf("AdamW changed grad")
			}
		}
		h.checkGuards()
	}
}

func f32(x float64) float64 { return float64(float32(x)) }
