package backendtest

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/clipline/clipline/internal/backend"
)

// inputSpec describes one input tensor of an operation under test: its
// length, the uniform range its random values come from, and whether the
// operation has a gradient for it.
type inputSpec struct {
	name   string
	n      int
	lo, hi float64
	diff   bool
}

// gradCase is one operation at one shape: the backend calls and the float64
// references for its forward and (when it has one) backward pass. run and
// runBack get the inputs in spec order; runBack gets nil for a gradient it
// must skip and recomputes any forward state (statistics, attention
// scratch) it needs. mode goes to operations that take a GradWrite; set
// lists the inputs whose gradients honour SetGrad (overwritten, not added
// to).
type gradCase struct {
	name    string
	inputs  []inputSpec
	outLen  int
	ref     func(x [][]float64) []float64
	refBack func(x [][]float64, dOut []float64) [][]float64
	run     func(be backend.Backend, x []backend.Buf, out backend.Buf)
	runBack func(be backend.Backend, x []backend.Buf, dOut backend.Buf, grads []backend.Buf, mode backend.GradWrite)
	set     []int
}

func gradCases() []gradCase {
	var cs []gradCase
	// Linear: tiny, odd sizes; deeper than one K slice (256) with ragged
	// tiles; wider than one column block (768); a single row.
	for _, s := range []struct {
		M, K, N int
		bias    bool
	}{
		{5, 7, 6, true}, {3, 4, 5, false}, {1, 33, 17, true},
		{203, 300, 37, true}, {7, 20, 800, true}, {64, 48, 96, false}, {12, 9, 13, true},
	} {
		cs = append(cs, linearCase(s.M, s.K, s.N, s.bias))
	}
	cs = append(cs,
		layerNormCase(7, 13), layerNormCase(33, 96),
		attentionCase(2, 5, 12, 3, false), attentionCase(2, 5, 12, 3, true),
		attentionCase(1, 77, 16, 2, true), attentionCase(2, 50, 32, 4, false),
		attentionCase(3, 9, 8, 1, true),
		embedCase(3, 7, 10, 6, 7), embedCase(4, 77, 160, 50, 79),
		patchifyCase(2, 8, 4), patchifyCase(1, 12, 3),
		assembleCase(3, 4, 10), assembleCase(2, 49, 160),
		gatherCase(6, 4, 9), gatherCase(40, 13, 200),
	)
	for _, act := range activations {
		// ±16 reaches where Φ and σ flush to 0 or 1.
		cs = append(cs, activationCase(act, 1001, 6), activationCase(act, 70001, 6), activationCase(act, 999, 16))
	}
	return cs
}

func linearCase(M, K, N int, bias bool) gradCase {
	c := gradCase{
		name:   describe("Linear/M%d_K%d_N%d_bias%v", M, K, N, bias),
		inputs: []inputSpec{{"in", M * K, -1, 1, true}, {"w", N * K, -1, 1, true}},
		outLen: M * N,
		set:    []int{0},
	}
	if bias {
		c.inputs = append(c.inputs, inputSpec{"bias", N, -1, 1, true})
	}
	b := func(x []backend.Buf) backend.Buf {
		if bias {
			return x[2]
		}
		return nil
	}
	c.ref = func(x [][]float64) []float64 {
		var bv []float64
		if bias {
			bv = x[2]
		}
		return refLinear(x[0], x[1], bv, M, K, N)
	}
	c.refBack = func(x [][]float64, dOut []float64) [][]float64 {
		dIn, dW, dB := refLinearBackward(dOut, x[0], x[1], M, K, N)
		if bias {
			return [][]float64{dIn, dW, dB}
		}
		return [][]float64{dIn, dW}
	}
	c.run = func(be backend.Backend, x []backend.Buf, out backend.Buf) {
		be.Linear(out, x[0], x[1], b(x), M, K, N)
	}
	c.runBack = func(be backend.Backend, x []backend.Buf, dOut backend.Buf, g []backend.Buf, mode backend.GradWrite) {
		var dB backend.Buf
		if bias {
			dB = g[2]
		}
		be.LinearBackward(g[0], g[1], dB, dOut, x[0], x[1], M, K, N, mode)
	}
	return c
}

const lnEps = 1e-5

func layerNormCase(rows, C int) gradCase {
	fwd := func(be backend.Backend, x []backend.Buf, out backend.Buf) (mean, rstd backend.Buf) {
		mean, rstd = be.Alloc(rows), be.Alloc(rows)
		be.LayerNorm(out, mean, rstd, x[0], x[1], x[2], rows, C, lnEps)
		return mean, rstd
	}
	return gradCase{
		name: describe("LayerNorm/rows%d_C%d", rows, C),
		inputs: []inputSpec{
			{"in", rows * C, -2, 4, true}, {"w", C, 0.5, 1.5, true}, {"b", C, -1, 1, true},
		},
		outLen: rows * C,
		ref: func(x [][]float64) []float64 {
			out, _, _ := refLayerNorm(x[0], x[1], x[2], rows, C, lnEps)
			return out
		},
		refBack: func(x [][]float64, dOut []float64) [][]float64 {
			dIn, dW, dB := refLayerNormBackward(dOut, x[0], x[1], rows, C, lnEps)
			return [][]float64{dIn, dW, dB}
		},
		run: func(be backend.Backend, x []backend.Buf, out backend.Buf) { fwd(be, x, out) },
		runBack: func(be backend.Backend, x []backend.Buf, dOut backend.Buf, g []backend.Buf, mode backend.GradWrite) {
			mean, rstd := fwd(be, x, be.Alloc(rows*C))
			be.LayerNormBackward(g[0], g[1], g[2], dOut, x[0], x[1], mean, rstd, rows, C)
		},
	}
}

func attentionCase(B, T, C, NH int, causal bool) gradCase {
	n := B * T * C
	fwd := func(be backend.Backend, x []backend.Buf, out backend.Buf) backend.Buf {
		scratch := be.Alloc(be.AttentionScratchLen(B, T, NH))
		be.Attention(out, scratch, x[0], x[1], x[2], B, T, C, NH, causal)
		return scratch
	}
	return gradCase{
		name: describe("Attention/B%d_T%d_C%d_NH%d_causal%v", B, T, C, NH, causal),
		inputs: []inputSpec{
			{"q", n, -2, 2, true}, {"k", n, -2, 2, true}, {"v", n, -1, 1, true},
		},
		outLen: n,
		ref: func(x [][]float64) []float64 {
			return refAttention(x[0], x[1], x[2], B, T, C, NH, causal)
		},
		refBack: func(x [][]float64, dOut []float64) [][]float64 {
			dQ, dK, dV := refAttentionBackward(dOut, x[0], x[1], x[2], B, T, C, NH, causal)
			return [][]float64{dQ, dK, dV}
		},
		run: func(be backend.Backend, x []backend.Buf, out backend.Buf) { fwd(be, x, out) },
		runBack: func(be backend.Backend, x []backend.Buf, dOut backend.Buf, g []backend.Buf, mode backend.GradWrite) {
			out := be.Alloc(n)
			scratch := fwd(be, x, out)
			be.AttentionBackward(g[0], g[1], g[2], dOut, scratch, x[0], x[1], x[2], out, B, T, C, NH, causal, mode)
		}, set: []int{0, 1, 2},
	}
}

func activationCase(act backend.Activation, n int, lim float64) gradCase {
	return gradCase{
		name:    describe("%v/n%d_pm%g", act, n, lim),
		inputs:  []inputSpec{{"in", n, -lim, lim, true}},
		outLen:  n,
		ref:     func(x [][]float64) []float64 { return refActivate(act, x[0]) },
		refBack: func(x [][]float64, d []float64) [][]float64 { return [][]float64{refActivateBackward(act, d, x[0])} },
		run:     func(be backend.Backend, x []backend.Buf, out backend.Buf) { be.Activate(act, out, x[0], n) },
		runBack: func(be backend.Backend, x []backend.Buf, dOut backend.Buf, g []backend.Buf, mode backend.GradWrite) {
			be.ActivateBackward(act, g[0], dOut, x[0], n, mode)
		},
		set: []int{0},
	}
}

// embedCase uses a small vocabulary so ids repeat (gradient collisions) and
// a position table longer than T (rows past T get no gradient).
func embedCase(B, T, C, vocab, posRows int) gradCase {
	rng := rand.New(rand.NewPCG(uint64(B*T), uint64(vocab)))
	ids := make([]int32, B*T)
	for i := range ids {
		ids[i] = int32(rng.IntN(vocab))
	}
	upIDs := func(be backend.Backend) backend.IntBuf {
		b := be.AllocInt(len(ids))
		be.UploadInt(b, ids)
		return b
	}
	return gradCase{
		name:   describe("EmbedTokens/B%d_T%d_C%d_vocab%d", B, T, C, vocab),
		inputs: []inputSpec{{"tok", vocab * C, -1, 1, true}, {"pos", posRows * C, -1, 1, true}},
		outLen: B * T * C,
		ref:    func(x [][]float64) []float64 { return refEmbed(ids, x[0], x[1], B, T, C) },
		refBack: func(x [][]float64, d []float64) [][]float64 {
			dTok, dPos := refEmbedBackward(d, ids, vocab, B, T, C)
			return [][]float64{dTok, append(dPos, make([]float64, (posRows-T)*C)...)}
		},
		run: func(be backend.Backend, x []backend.Buf, out backend.Buf) {
			be.EmbedTokens(out, upIDs(be), x[0], x[1], B, T, C)
		},
		runBack: func(be backend.Backend, x []backend.Buf, dOut backend.Buf, g []backend.Buf, mode backend.GradWrite) {
			be.EmbedTokensBackward(g[0], g[1], dOut, upIDs(be), B, T, C)
		},
	}
}

func patchifyCase(B, S, P int) gradCase {
	NP := (S / P) * (S / P)
	return gradCase{
		name:   describe("Patchify/B%d_S%d_P%d", B, S, P),
		inputs: []inputSpec{{"pixels", B * 3 * S * S, -2, 2, false}},
		outLen: B * NP * 3 * P * P,
		ref:    func(x [][]float64) []float64 { return refPatchify(x[0], B, S, P) },
		run: func(be backend.Backend, x []backend.Buf, out backend.Buf) {
			be.Patchify(out, x[0], B, S, P)
		},
	}
}

func assembleCase(B, NP, C int) gradCase {
	return gradCase{
		name: describe("AssembleVision/B%d_NP%d_C%d", B, NP, C),
		inputs: []inputSpec{
			{"patch", B * NP * C, -1, 1, true}, {"cls", C, -1, 1, true}, {"pos", (NP + 1) * C, -1, 1, true},
		},
		outLen: B * (NP + 1) * C,
		ref:    func(x [][]float64) []float64 { return refAssembleVision(x[0], x[1], x[2], B, NP, C) },
		refBack: func(x [][]float64, d []float64) [][]float64 {
			dP, dC, dPos := refAssembleVisionBackward(d, B, NP, C)
			return [][]float64{dP, dC, dPos}
		},
		run: func(be backend.Backend, x []backend.Buf, out backend.Buf) {
			be.AssembleVision(out, x[0], x[1], x[2], B, NP, C)
		},
		runBack: func(be backend.Backend, x []backend.Buf, dOut backend.Buf, g []backend.Buf, mode backend.GradWrite) {
			be.AssembleVisionBackward(g[0], g[1], g[2], dOut, B, NP, C)
		},
	}
}

// gatherCase draws n indices from rowsIn < n rows, so indices repeat.
func gatherCase(n, rowsIn, C int) gradCase {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(rowsIn)))
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(rng.IntN(rowsIn))
	}
	upIdx := func(be backend.Backend) backend.IntBuf {
		b := be.AllocInt(n)
		be.UploadInt(b, idx)
		return b
	}
	return gradCase{
		name:    describe("GatherRows/n%d_rows%d_C%d", n, rowsIn, C),
		inputs:  []inputSpec{{"in", rowsIn * C, -1, 1, true}},
		outLen:  n * C,
		ref:     func(x [][]float64) []float64 { return refGather(x[0], idx, C) },
		refBack: func(x [][]float64, d []float64) [][]float64 { return [][]float64{refGatherBackward(d, idx, rowsIn, C)} },
		run: func(be backend.Backend, x []backend.Buf, out backend.Buf) {
			be.GatherRows(out, x[0], upIdx(be), n, C)
		},
		runBack: func(be backend.Backend, x []backend.Buf, dOut backend.Buf, g []backend.Buf, mode backend.GradWrite) {
			be.GatherRowsBackward(g[0], dOut, upIdx(be), n, C)
		},
	}
}

func caseRNG(name string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.New(rand.NewPCG(h.Sum64(), 0x5eed))
}

// runCase checks one gradCase: forward against the reference (outputs
// start as NaN); backward with all gradients, each gradient alone and none,
// each starting from random values that must be accumulated into; inputs
// unchanged; guards intact; then the finite-difference checks.
func runCase(t *testing.T, be backend.Backend, tol Tolerances, c gradCase) {
	rng := caseRNG(c.name)
	x := make([][]float64, len(c.inputs))
	for i, in := range c.inputs {
		x[i] = randVals(rng, in.n, in.lo, in.hi)
	}
	h := newHarness(t, be)
	putInputs := func() []backend.Buf {
		bufs := make([]backend.Buf, len(x))
		for i, in := range c.inputs {
			bufs[i] = h.put64(in.name, x[i])
		}
		return bufs
	}
	checkInputs := func(bufs []backend.Buf, when string) {
		t.Helper()
		for i, in := range c.inputs {
			got := h.get64(bufs[i])
			for j := range got {
				if got[j] != x[i][j] {
					t.Errorf("%s changed input %s at %d: %g, was %g", when, in.name, j, got[j], x[i][j])
					break
				}
			}
		}
	}

	bufs := putInputs()
	out := h.nan("out", c.outLen)
	c.run(be, bufs, out)
	compare(t, "forward", h.get(out), c.ref(x), tol)
	checkInputs(bufs, "forward")
	h.checkGuards()
	if c.refBack == nil {
		return
	}

	dOut := randVals(rng, c.outLen, -1, 1)
	want := c.refBack(x, dOut)
	var diff []int
	for i, in := range c.inputs {
		if in.diff {
			diff = append(diff, i)
		}
	}
	subsets := [][]int{diff}
	if len(diff) > 1 {
		for _, i := range diff {
			subsets = append(subsets, []int{i})
		}
	}
	subsets = append(subsets, nil)
	for _, sub := range subsets {
		bufs := putInputs()
		dO := h.put64("dOut", dOut)
		grads := make([]backend.Buf, len(x))
		g0 := make([][]float64, len(x))
		names := ""
		for _, i := range sub {
			g0[i] = randVals(rng, c.inputs[i].n, -1, 1)
			grads[i] = h.put64("d"+c.inputs[i].name, g0[i])
			names += " d" + c.inputs[i].name
		}
		c.runBack(be, bufs, dO, grads, backend.AddGrad)
		for _, i := range sub {
			compare(t, describe("backward d%s (given%s)", c.inputs[i].name, names),
				h.get(grads[i]), add64(g0[i], want[i]), tol)
		}
		checkInputs(bufs, "backward")
		if got := h.get64(dO); !equal64(got, dOut) {
			t.Errorf("backward changed dOut")
		}
		h.checkGuards()
	}
	if len(c.set) > 0 {
		// SetGrad: the gradients it covers start as NaN and must come out
		// as the reference's, never read; the others still accumulate.
		bufs := putInputs()
		grads := make([]backend.Buf, len(x))
		g0 := make([][]float64, len(x))
		for _, i := range diff {
			g0[i] = randVals(rng, c.inputs[i].n, -1, 1)
			grads[i] = h.put64("d"+c.inputs[i].name, g0[i])
		}
		for _, i := range c.set {
			g0[i] = make([]float64, c.inputs[i].n)
			grads[i] = h.nan("d"+c.inputs[i].name, c.inputs[i].n)
		}
		c.runBack(be, bufs, h.put64("dOut", dOut), grads, backend.SetGrad)
		for _, i := range diff {
			compare(t, describe("backward with SetGrad d%s", c.inputs[i].name), h.get(grads[i]), add64(g0[i], want[i]), tol)
		}
		h.checkGuards()
	}
	refFD(t, c, x, rng)
	backendFD(t, be, c, x, rng, tol)
}

func equal64(a, b []float64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// refFD checks the reference backward against central differences of the
// reference forward in float64 for L = Σ r·out, on up to 40 sampled
// elements of each input.
func refFD(t *testing.T, c gradCase, x [][]float64, rng *rand.Rand) {
	t.Helper()
	r := randVals(rng, c.outLen, -1, 1)
	loss := func() float64 {
		s := 0.0
		for i, v := range c.ref(x) {
			s += r[i] * v
		}
		return s
	}
	g := c.refBack(x, r)
	for i, in := range c.inputs {
		if !in.diff {
			continue
		}
		for _, j := range sample(rng, in.n, 40) {
			orig := x[i][j]
			const h = 1e-6
			x[i][j] = orig + h
			lp := loss()
			x[i][j] = orig - h
			lm := loss()
			x[i][j] = orig
			num := (lp - lm) / (2 * h)
			if !(math.Abs(num-g[i][j]) <= 1e-6*(1+math.Abs(num))) {
				t.Errorf("reference gradient d%s[%d] = %g, finite difference %g", in.name, j, g[i][j], num)
			}
		}
	}
}

// backendFD checks the backend's backward against its own forward: for a
// random direction δ per input, L(x+δ) - L(x-δ) ≈ 2·Σ grad·δ with
// L = Σ r·out computed in float64 from the float32 outputs. δ is formed as
// the difference of the float32-rounded perturbed inputs, so rounding of
// the inputs does not enter the comparison.
func backendFD(t *testing.T, be backend.Backend, c gradCase, x [][]float64, rng *rand.Rand, tol Tolerances) {
	t.Helper()
	r := randVals(rng, c.outLen, -1, 1)
	bufs := make([]backend.Buf, len(x))
	up := func(i int, v []float64) {
		if bufs[i] == nil {
			bufs[i] = be.Alloc(len(v))
		}
		be.Upload(bufs[i], to32(v))
	}
	for i := range x {
		up(i, x[i])
	}
	dOut := be.Alloc(c.outLen)
	be.Upload(dOut, to32(r))
	grads := make([]backend.Buf, len(x))
	for i, in := range c.inputs {
		if in.diff {
			grads[i] = be.Alloc(in.n)
		}
	}
	c.runBack(be, bufs, dOut, grads, backend.AddGrad)
	out := be.Alloc(c.outLen)
	host := make([]float32, c.outLen)
	loss := func() float64 {
		c.run(be, bufs, out)
		be.Download(host, out)
		s := 0.0
		for i, v := range host {
			s += r[i] * float64(v)
		}
		return s
	}
	for i, in := range c.inputs {
		if !in.diff {
			continue
		}
		g := make([]float32, in.n)
		be.Download(g, grads[i])
		const h = 1e-2
		xp, xm := make([]float64, in.n), make([]float64, in.n)
		ana, gn, dn := 0.0, 0.0, 0.0
		for j, v := range x[i] {
			d := 2*rng.Float64() - 1
			xp[j] = float64(float32(v + h*d))
			xm[j] = float64(float32(v - h*d))
			delta := xp[j] - xm[j]
			ana += float64(g[j]) * delta
			gn += float64(g[j]) * float64(g[j])
			dn += delta * delta
		}
		up(i, xp)
		lp := loss()
		up(i, xm)
		lm := loss()
		up(i, x[i])
		num := lp - lm
		lim := tol.FD * (math.Abs(ana) + 1e-2*math.Sqrt(gn*dn))
		if !(math.Abs(num-ana) <= lim) {
			t.Errorf("backend gradient d%s: directional derivative %g, finite difference %g (limit %g)",
				in.name, ana, num, lim)
		}
	}
}

// sample returns up to k distinct indices in [0, n), all of them when n <= k.
func sample(rng *rand.Rand, n, k int) []int {
	if n <= k {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	return rng.Perm(n)[:k]
}
