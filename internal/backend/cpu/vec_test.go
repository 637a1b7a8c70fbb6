package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/simd"
)

// asmLevels are the available levels with assembly tables.
func asmLevels() []simd.Level { return simd.Available()[1:] }

func randVec(rng *rand.Rand, n int, lo, hi float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + rng.Float64()*(hi-lo))
	}
	return v
}

// near reports whether got equals want (infinities included) or is within
// tol·(1+|want|) of it; NaN is near nothing.
func near(got, want float32, tol float64) bool {
	return got == want || math.Abs(float64(got-want)) <= tol*(1+math.Abs(float64(want)))
}

// vecLengths have and lack a tail past the last multiple of 8.
var vecLengths = []int{0, 1, 7, 8, 9, 63, 1000}

// TestVecElementwise compares each assembly table's exp, activations and
// dropout mask with the Go table, element by element.
func TestVecElementwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, l := range asmLevels() {
		v := opsFor(l)
		for _, n := range vecLengths {
			name := fmt.Sprintf("%v n=%d", l, n)
			x := randVec(rng, n, -20, 20)
			if n > 8 {
				x[0], x[1], x[2], x[3] = -200, 200, 0, -60
			}
			dOut := randVec(rng, n, -1, 1)
			e := make([]float32, n)
			v.exp(e, x)
			for i := range x {
				// The assembly clamps its input to expf's finite range.
				want := expf(min(max(x[i], -87.33654), 88.72283))
				if d := math.Abs(float64(e[i] - want)); e[i] != want && !(d <= 2.5e-7*float64(want)) {
					t.Fatalf("%s: exp(%g)[%d] = %g, Go %g", name, x[i], i, e[i], want)
				}
			}
			for act := range numActivations {
				g, gGo := make([]float32, n), make([]float32, n)
				v.activate[act](g, x)
				goOps.activate[act](gGo, x)
				dIn, dInGo := slices.Repeat([]float32{0.25}, n), slices.Repeat([]float32{0.25}, n)
				v.activateBackward[act](dIn, dOut, x)
				goOps.activateBackward[act](dInGo, dOut, x)
				for i := range x {
					// 1e-6 relative, and 1e-30 absolute for tails the
					// assembly's clamped exp leaves denormal instead of 0.
					if !near(g[i], gGo[i], 1e-6) && math.Abs(float64(g[i]-gGo[i])) > 1e-30 {
						t.Fatalf("%s: %v(%g)[%d] = %g, Go %g", name, backend.Activation(act), x[i], i, g[i], gGo[i])
					}
					if !near(dIn[i], dInGo[i], 1e-6) {
						t.Fatalf("%s: %v backward at %g [%d] = %g, Go %g", name, backend.Activation(act), x[i], i, dIn[i], dInGo[i])
					}
				}
			}
		}
		for _, c := range []struct {
			n           int
			p           float32
			seed, start uint64
		}{{0, 0.1, 1, 0}, {8, 0.5, 2, 3}, {1001, 0.1, 42, 0}, {64, 0.3, 1<<63 + 5, 1<<40 - 17}, {40, 0, 9, 9}, {40, 1, 9, 9}} {
			keep := float32(0)
			if c.p < 1 {
				keep = 1 / (1 - c.p)
			}
			mask := make([]float32, c.n+1)
			mask[c.n] = -1
			v.dropoutMask(mask[:c.n], c.p, keep, c.seed, c.start)
			want := make([]float32, c.n)
			goOps.dropoutMask(want, c.p, keep, c.seed, c.start)
			if !slices.Equal(mask[:c.n], want) {
				t.Fatalf("%v %+v: dropout mask differs from Go's", l, c)
			}
			if mask[c.n] != -1 {
				t.Fatalf("%v %+v: wrote past the end", l, c)
			}
		}
	}
}

// TestVecPositionIndependent: an element's exp and activations (forward and
// backward) are the same bits whatever its position and the slice's length,
// tail included, so a softmax block's values do not depend on the batch's
// longest row (which made a caption's embedding depend on its batch).
func TestVecPositionIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	const N = 64
	x := randVec(rng, N, -20, 20)
	dOut := randVec(rng, N, -1, 1)
	for _, l := range simd.Available() {
		v := opsFor(l)
		for act := range numActivations {
			full, g, dIn := make([]float32, N), make([]float32, N), slices.Repeat([]float32{0.5}, N)
			v.exp(full, x)
			v.activate[act](g, x)
			v.activateBackward[act](dIn, dOut, x)
			for from := range 9 {
				for n := 1; from+n <= N; n += 3 {
					e, gg, d := make([]float32, n), make([]float32, n), slices.Repeat([]float32{0.5}, n)
					v.exp(e, x[from:from+n])
					v.activate[act](gg, x[from:from+n])
					v.activateBackward[act](d, dOut[from:from+n], x[from:from+n])
					for i := range n {
						if e[i] != full[from+i] || gg[i] != g[from+i] || d[i] != dIn[from+i] {
							t.Fatalf("%v %v: element %d of a %d-long slice from %d: exp %g/%g act %g/%g back %g/%g, differs from the same element in a %d-long slice",
								l, backend.Activation(act), i, n, from, e[i], full[from+i], gg[i], g[from+i], d[i], dIn[from+i], N)
						}
					}
				}
			}
		}
	}
}

// TestVecRows compares the assembly tables' layer-norm and softmax row
// loops with the Go table, and checks that the layer-norm backward kernels
// for some of the outputs write exactly what the all-outputs kernel does.
func TestVecRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, l := range asmLevels() {
		v := opsFor(l)
		for _, C := range []int{1, 7, 8, 24, 77, 768} {
			name := fmt.Sprintf("%v C=%d", l, C)
			x, w, b := randVec(rng, C, -3, 3), randVec(rng, C, -1, 1), randVec(rng, C, -1, 1)
			dOut := randVec(rng, C, -1, 1)
			out, outGo := make([]float32, C), make([]float32, C)
			m, r := v.layerNorm(out, x, w, b, 1e-5)
			mGo, rGo := goOps.layerNorm(outGo, x, w, b, 1e-5)
			if !near(m, mGo, 1e-6) || !near(r, rGo, 1e-5) {
				t.Fatalf("%s: layer norm mean, rstd %g, %g; Go %g, %g", name, m, r, mGo, rGo)
			}
			for i := range out {
				if !near(out[i], outGo[i], 1e-5) {
					t.Fatalf("%s: layer norm [%d] = %g, Go %g", name, i, out[i], outGo[i])
				}
			}
			start := [3][]float32{randVec(rng, C, -1, 1), randVec(rng, C, -1, 1), randVec(rng, C, -1, 1)}
			grads := func(ops *vecOps, want [3]bool) [3][]float32 {
				var g [3][]float32
				for i := range g {
					if want[i] {
						g[i] = slices.Clone(start[i])
					}
				}
				ops.layerNormBackward(g[0], g[1], g[2], x, dOut, w, mGo, rGo)
				return g
			}
			all := [3]bool{true, true, true}
			full, fullGo := grads(v, all), grads(&goOps, all)
			for k := range full {
				for i := range full[k] {
					if !near(full[k][i], fullGo[k][i], 1e-5) {
						t.Fatalf("%s: layer norm backward output %d [%d] = %g, Go %g", name, k, i, full[k][i], fullGo[k][i])
					}
				}
			}
			for mask := 1; mask < 7; mask++ {
				want := [3]bool{mask&1 != 0, mask&2 != 0, mask&4 != 0}
				got := grads(v, want)
				for k := range got {
					if want[k] && !slices.Equal(got[k], full[k]) {
						t.Fatalf("%s: layer norm backward with outputs %v: output %d differs from the all-outputs kernel's", name, want, k)
					}
				}
			}
		}
		for _, n := range vecLengths {
			name := fmt.Sprintf("%v n=%d", l, n)
			x, p := randVec(rng, n, -5, 5), randVec(rng, n, 0, 1)
			if got, want := v.max(x), goOps.max(x); got != want {
				t.Fatalf("%s: max %g, Go %g", name, got, want)
			}
			if got, want := v.sum(x), goOps.sum(x); !near(got, want, 1e-5) {
				t.Fatalf("%s: sum %g, Go %g", name, got, want)
			}
			if got, want := v.dot(x, p), goOps.dot(x, p); !near(got, want, 1e-5) {
				t.Fatalf("%s: dot %g, Go %g", name, got, want)
			}
			// The elementwise ones are the same float32 operations: exact.
			for _, op := range []struct {
				name   string
				asm, g func(x []float32)
			}{
				{"shiftScale", func(x []float32) { v.shiftScale(x, 0.3, 1.7) }, func(x []float32) { goOps.shiftScale(x, 0.3, 1.7) }},
				{"scale", func(x []float32) { v.scale(x, 0.7) }, func(x []float32) { goOps.scale(x, 0.7) }},
				{"softmaxBack", func(x []float32) { v.softmaxBack(x, p, 0.2, 1.3) }, func(x []float32) { goOps.softmaxBack(x, p, 0.2, 1.3) }},
			} {
				a, g := slices.Clone(x), slices.Clone(x)
				op.asm(a)
				op.g(g)
				if !slices.Equal(a, g) {
					t.Fatalf("%s: %s differs from Go's", name, op.name)
				}
			}
		}
	}
}
