// Package backendtest is a conformance suite for backend.Backend
// implementations. Run checks every operation, forward and backward, against
// naive float64 references written here, including the interface's
// conventions: forward operations overwrite their outputs (outputs start as
// NaN), backward operations accumulate into gradients (gradients start
// random) and skip nil gradients, no operation writes outside its buffers
// (every buffer is a Slice with guard values around it) or changes its
// inputs. Every backward operation is also checked against central finite
// differences, both of the float64 reference forward (tight) and of the
// backend's own float32 forward along random directions (loose).
//
// The suite only uses the backend.Backend interface, so any backend runs it:
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, mybackend.New(), backendtest.DefaultTolerances())
//	}
package backendtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/clipline/clipline/internal/backend"
)

// Tolerances bound the difference between a backend and the references.
type Tolerances struct {
	// A value passes when |got - want| <= Abs + Rel·(|want| + rms(want)),
	// rms taken over the whole compared tensor (so a value that cancels to
	// near zero inside a large sum is judged on the sum's scale).
	Abs, Rel float64
	// FD bounds the relative error of the backend's analytic directional
	// derivative against central differences of its own forward pass.
	FD float64
}

// DefaultTolerances suits float32 compute with float32 accumulation.
func DefaultTolerances() Tolerances {
	return Tolerances{Abs: 1e-5, Rel: 1e-4, FD: 1e-2}
}

// Run runs the whole suite against be as subtests of t.
func Run(t *testing.T, be backend.Backend, tol Tolerances) {
	t.Run("Memory", func(t *testing.T) { testMemory(t, be) })
	for _, c := range gradCases() {
		t.Run(c.name, func(t *testing.T) { runCase(t, be, tol, c) })
	}
	t.Run("LayerNormStats", func(t *testing.T) { testLayerNormStats(t, be, tol) })
	t.Run("Elementwise", func(t *testing.T) { testElementwise(t, be, tol) })
	t.Run("Dropout", func(t *testing.T) { testDropout(t, be, tol) })
	t.Run("LinearAdd", func(t *testing.T) { testLinearAdd(t, be, tol) })
	for _, act := range activations {
		t.Run("ActivatePacked/"+act.String(), func(t *testing.T) { testActivatePacked(t, be, tol, act) })
	}
	t.Run("PatchifyImages", func(t *testing.T) { testPatchifyImages(t, be) })
	t.Run("SumSquares", func(t *testing.T) { testSumSquares(t, be, tol) })
	t.Run("AdamW", func(t *testing.T) { testAdamW(t, be, tol) })
}

// harness allocates every buffer as a Slice of a larger one whose
// surroundings hold a sentinel, and checks at the end that they still do.
type harness struct {
	t      *testing.T
	be     backend.Backend
	guards []guarded
}

type guarded struct {
	name   string
	parent backend.Buf
	n      int
}

const (
	guardLen = 7
	guardVal = float32(-7777.25)
)

func newHarness(t *testing.T, be backend.Backend) *harness {
	return &harness{t: t, be: be}
}

// put returns a guarded buffer holding vals.
func (h *harness) put(name string, vals []float32) backend.Buf {
	n := len(vals)
	parent := h.be.Alloc(n + 2*guardLen)
	host := make([]float32, n+2*guardLen)
	for i := range host {
		host[i] = guardVal
	}
	copy(host[guardLen:], vals)
	h.be.Upload(parent, host)
	h.guards = append(h.guards, guarded{name, parent, n})
	return parent.Slice(guardLen, n)
}

// put64 uploads float64 values (exactly representable in float32).
func (h *harness) put64(name string, vals []float64) backend.Buf {
	return h.put(name, to32(vals))
}

// nan returns a guarded buffer of n NaNs, for outputs that must be
// overwritten.
func (h *harness) nan(name string, n int) backend.Buf {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.NaN())
	}
	return h.put(name, v)
}

func (h *harness) get(b backend.Buf) []float32 {
	out := make([]float32, b.Len())
	h.be.Download(out, b)
	return out
}

func (h *harness) get64(b backend.Buf) []float64 { return to64(h.get(b)) }

// checkGuards reports any write outside a buffer.
func (h *harness) checkGuards() {
	h.t.Helper()
	for _, g := range h.guards {
		all := h.get(g.parent)
		for i := range guardLen {
			if all[i] != guardVal || all[guardLen+g.n+i] != guardVal {
				h.t.Errorf("write outside buffer %s (%d values): guard before %v, after %v",
					g.name, g.n, all[:guardLen], all[guardLen+g.n:])
				break
			}
		}
	}
	h.guards = h.guards[:0]
}

func to32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

func to64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// randVals returns n float32-representable values uniform in [lo, hi).
func randVals(rng *rand.Rand, n int, lo, hi float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(float32(lo + (hi-lo)*rng.Float64()))
	}
	return out
}

// compare checks got against want and reports the worst few mismatches.
func compare(t *testing.T, what string, got []float32, want []float64, tol Tolerances) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	rms := 0.0
	for _, w := range want {
		rms += w * w
	}
	if len(want) > 0 {
		rms = math.Sqrt(rms / float64(len(want)))
	}
	bad, worst, worstI := 0, 0.0, -1
	for i, w := range want {
		g := float64(got[i])
		err := math.Abs(g - w)
		lim := tol.Abs + tol.Rel*(math.Abs(w)+rms)
		if !(err <= lim) { // NaN fails too
			bad++
			if math.IsNaN(err) || err/lim > worst {
				worst, worstI = err/lim, i
				if math.IsNaN(err) {
					worst = math.Inf(1)
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values out of tolerance; worst at %d: got %g, want %g (%.3g× the limit)",
			what, bad, len(want), worstI, got[worstI], want[worstI], worst)
	}
}

func add64(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] + b[i]
	}
	return out
}

func describe(format string, args ...any) string { return fmt.Sprintf(format, args...) }
