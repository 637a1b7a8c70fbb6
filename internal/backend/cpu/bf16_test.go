package cpu_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/clipline/clipline/internal/backend/backendtest"
	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/simd"
)

// bf16Tolerances are the CUDA bf16 mode's (its conformance test): bf16
// operands carry 8 significant bits. FD is off: a bf16 forward is not
// smooth at the scale of finite differences.
func bf16Tolerances() backendtest.Tolerances {
	return backendtest.Tolerances{Abs: 1e-4, Rel: 2e-2, FD: 1e6}
}

// bf16Levels are the bf16 backends to test: every bf16 kernel level with
// the fp32 level that runs beside it by default.
func bf16Levels() []*cpu.Backend {
	var bes []*cpu.Backend
	for _, bl := range simd.BF16Available() {
		bes = append(bes, cpu.NewBF16Level(runtime.GOMAXPROCS(0), max(bl, simd.Selected()), bl))
	}
	return bes
}

func TestConformanceBF16(t *testing.T) {
	for _, be := range bf16Levels() {
		t.Run(be.KernelName(), func(t *testing.T) { backendtest.Run(t, be, bf16Tolerances()) })
	}
}

func bf(x float32) float64 { return float64(simd.FromBF16(simd.ToBF16(x))) }

// A bf16 Linear is the product of the bf16-rounded operands, accumulated
// in fp32: within fp32 accumulation rounding of the float64 sum of those
// products, and clearly not the fp32 product. Skinny products stay fp32.
func TestLinearBF16RoundsOperands(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, be := range bf16Levels() {
		f32 := cpu.NewLevel(be.Workers(), simd.Selected())
		for _, s := range []struct{ M, K, N int }{{37, 300, 70}, {5, 1031, 33}, {130, 64, 800}, {9, 40, 32}} {
			name := fmt.Sprintf("%s M=%d K=%d N=%d", be.KernelName(), s.M, s.K, s.N)
			x, w, bias := randBuf(be, s.M*s.K, rng), randBuf(be, s.N*s.K, rng), randBuf(be, s.N, rng)
			out, out32 := be.Alloc(s.M*s.N), be.Alloc(s.M*s.N)
			be.Linear(out, x, w, bias, s.M, s.K, s.N)
			f32.Linear(out32, x, w, bias, s.M, s.K, s.N)
			xd, wd, bd := cpu.Data(x), cpu.Data(w), cpu.Data(bias)
			skinny := min(s.K, s.N) <= 32
			differ := 0
			for i := range s.M {
				for j := range s.N {
					ref, mag := float64(bd[j]), math.Abs(float64(bd[j]))
					for p := range s.K {
						pr := bf(xd[i*s.K+p]) * bf(wd[j*s.K+p])
						ref += pr
						mag += math.Abs(pr)
					}
					got, got32 := cpu.Data(out)[i*s.N+j], cpu.Data(out32)[i*s.N+j]
					if skinny {
						if got != got32 {
							t.Fatalf("%s (%d,%d): skinny product %g, fp32 %g", name, i, j, got, got32)
						}
						continue
					}
					if d := math.Abs(float64(got) - ref); !(d <= 2*float64(s.K+2)*0x1p-24*mag) {
						t.Fatalf("%s (%d,%d): %g, bf16-operand reference %g", name, i, j, got, ref)
					}
					if got != got32 {
						differ++
					}
				}
			}
			if !skinny && differ < s.M*s.N/2 {
				t.Fatalf("%s: only %d of %d values differ from fp32: operands not rounded?", name, differ, s.M*s.N)
			}
		}
	}
}

// Every bf16 kernel gives the whole mode's Linear and attention the same
// results bit for bit, except VDPBF16PS (its own rounding, so within
// tolerances; run only where the CPU has avx512_bf16): the kernels'
// semantics are one.
func TestBF16LevelsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const B, T, C, NH = 2, 50, 128, 2 // head size 64: the bf16 attention
	M, K, N := 70, 520, 100
	ref := cpu.NewBF16Level(2, simd.Selected(), simd.Go)
	x, w := randBuf(ref, M*K, rng), randBuf(ref, N*K, rng)
	q, k, v := randBuf(ref, B*T*C, rng), randBuf(ref, B*T*C, rng), randBuf(ref, B*T*C, rng)
	run := func(be *cpu.Backend) (lin, att []float32) {
		o := be.Alloc(M * N)
		be.Linear(o, x, w, nil, M, K, N)
		a := be.Alloc(B * T * C)
		be.Attention(a, be.Alloc(be.AttentionScratchLen(B, T, NH)), q, k, v, B, T, C, NH, true)
		return cpu.Data(o), cpu.Data(a)
	}
	wantL, wantA := run(ref)
	f32 := cpu.NewLevel(2, simd.Selected())
	lin32, att32 := run(f32)
	if equal(wantA, att32) || equal(wantL, lin32) {
		t.Fatal("bf16 mode's results equal fp32's")
	}
	for _, bl := range simd.BF16Available() {
		be := cpu.NewBF16Level(3, simd.Selected(), bl)
		gotL, gotA := run(be)
		if bl == simd.AVX512 {
			// VDPBF16PS rounds on its own (simd's TestBF16KernelVDPBF16PS):
			// within fp32 accumulation for Linear; in attention a score's
			// last bit can move P by a bf16 step.
			for _, c := range []struct {
				got, want []float32
				tol       float64
			}{{gotL, wantL, 1e-3}, {gotA, wantA, 1e-2}} {
				for i := range c.got {
					if d := math.Abs(float64(c.got[i] - c.want[i])); !(d <= c.tol) {
						t.Fatalf("%s: value %d is %g, the Go reference kernel's %g", be.KernelName(), i, c.got[i], c.want[i])
					}
				}
			}
			continue
		}
		if !equal(gotL, wantL) || !equal(gotA, wantA) {
			t.Errorf("%s: Linear or Attention differs from the Go reference kernel's", be.KernelName())
		}
	}
	// Against fp32, at bf16's precision.
	for i := range att32 {
		if d := math.Abs(float64(wantA[i] - att32[i])); !(d <= 2e-2) {
			t.Fatalf("attention[%d]: bf16 %g, fp32 %g", i, wantA[i], att32[i])
		}
	}
}

func equal(a, b []float32) bool {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return len(a) == len(b)
}

// A weight's packed form follows writes through the backend: after an
// Upload (or AdamW) the next product uses the new values.
func TestBF16PackedWeightFollowsWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	be := cpu.NewBF16(2)
	M, K, N := 20, 96, 64
	x, w := randBuf(be, M*K, rng), randBuf(be, N*K, rng)
	out := be.Alloc(M * N)
	be.Linear(out, x, w, nil, M, K, N)
	check := func(what string) {
		t.Helper()
		be.Linear(out, x, w, nil, M, K, N)
		fresh := cpu.NewBF16(2)
		want := fresh.Alloc(M * N)
		fresh.Linear(want, x, w, nil, M, K, N)
		if !equal(cpu.Data(out), cpu.Data(want)) {
			t.Fatalf("after %s the product used the old packed weight", what)
		}
	}
	newW := make([]float32, 10)
	for i := range newW {
		newW[i] = 3
	}
	be.Upload(w.Slice(N*K-20, 10), newW)
	check("an Upload into the weight's last row")
	g, m, v := randBuf(be, N*K, rng), be.Alloc(N*K), be.Alloc(N*K)
	be.AdamW(w, g, m, v, N*K, 0.1, 0.9, 0.999, 1e-8, 0, 1)
	check("AdamW")
	be.Scale(w.Slice(0, 5), 2, 5)
	check("Scale of its first values")
}

// Concurrent callers (serve's batches) share one packed weight: the first
// products race to pack it, and every result equals a lone call's.
func TestBF16ConcurrentCalls(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	M, K, N := 30, 200, 90
	lone := cpu.NewBF16(2)
	x, w := randBuf(lone, M*K, rng), randBuf(lone, N*K, rng)
	want := lone.Alloc(M * N)
	lone.Linear(want, x, w, nil, M, K, N)
	be := cpu.NewBF16(2)
	for g, o := range concurrentLinear(be, x, w, nil, M, K, N) {
		if !equal(cpu.Data(o), cpu.Data(want)) {
			t.Fatalf("goroutine %d's product differs from a lone call's", g)
		}
	}
}
