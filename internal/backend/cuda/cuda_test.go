//go:build cuda || cudaemu

package cuda_test

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/backend/backendtest"
	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/backend/cuda"
)

// gpu opens GPU 0, skipping the test with the reason when no GPU is usable;
// with CLIPLINE_REQUIRE_GPU=1 (the GPU machine's script sets it) or
// CLIPLINE_REQUIRE_CUDAEMU=1 (CI, which runs these tests on the emulator)
// the test fails instead, so a broken driver setup or emulator can never
// pass as a skip.
func gpu(t testing.TB, opts cuda.Options) *cuda.Backend {
	t.Helper()
	be, err := cuda.New(0, opts)
	if err != nil {
		if os.Getenv("CLIPLINE_REQUIRE_GPU") == "1" || os.Getenv("CLIPLINE_REQUIRE_CUDAEMU") == "1" {
			t.Fatalf("CUDA backend unavailable: %v", err)
		}
		t.Skipf("no usable GPU, skipping: %v", err)
	}
	t.Cleanup(func() {
		if err := be.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return be
}

// emulated reports the CPU emulation of the device (build tag cudaemu),
// where -short trims the slowest tests to what CI can afford.
func emulated(be *cuda.Backend) bool { return be.DeviceName() == "clipline CPU emulator" }

// skipShortEmulated skips a test whose code paths other tests cover, when
// running -short on the emulator.
func skipShortEmulated(t *testing.T, be *cuda.Backend) {
	if testing.Short() && emulated(be) {
		t.Skip("-short on the emulator: covered by the other tests")
	}
}

// bf16Tolerances are the conformance tolerances of bf16 mode: products see
// inputs rounded to 8 significant bits (relative error 2^-9 each). The
// suite's finite-difference check of the backend against its own forward is
// off (FD huge): a forward that rounds its inputs to bf16 moves in steps of
// 2^-8, as large as the suite's perturbation, so its differences measure the
// rounding, not the derivative. The gradients are still checked against the
// float64 references (Rel), and every other operation is the fp32 one,
// which TestConformanceFP32 checks with finite differences.
func bf16Tolerances() backendtest.Tolerances {
	return backendtest.Tolerances{Abs: 1e-4, Rel: 2e-2, FD: 1e6}
}

func TestConformanceFP32(t *testing.T) {
	be := gpu(t, cuda.Options{})
	path, ver := be.CublasLibrary()
	fused, note := be.FusedBias()
	t.Logf("device %s, cuBLAS %s (version %d), fused bias %v (%s)", be.DeviceName(), path, ver, fused, note)
	backendtest.Run(t, be, backendtest.DefaultTolerances())
	if err := be.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestConformanceBF16(t *testing.T) {
	be := gpu(t, cuda.Options{BF16: true})
	backendtest.Run(t, be, bf16Tolerances())
	if err := be.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestConformanceBF16Auto(t *testing.T) {
	be := gpu(t, cuda.Options{BF16Auto: true})
	skipShortEmulated(t, be)
	backendtest.Run(t, be, bf16Tolerances())
}

func TestConformanceTF32(t *testing.T) {
	be := gpu(t, cuda.Options{TF32: true})
	skipShortEmulated(t, be)
	backendtest.Run(t, be, bf16Tolerances())
}

func TestConformanceBF16NoWeightCache(t *testing.T) {
	be := gpu(t, cuda.Options{BF16: true, NoWeightCache: true})
	skipShortEmulated(t, be)
	backendtest.Run(t, be, bf16Tolerances())
}

func randSlice(rng *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(scale * (2*rng.Float64() - 1))
	}
	return v
}

func down(be backend.Backend, b backend.Buf) []float32 {
	v := make([]float32, b.Len())
	be.Download(v, b)
	return v
}

// relErr is max|got-want| / max|want|.
func relErr(got, want []float32) float64 {
	var d, m float64
	for i := range want {
		d = math.Max(d, math.Abs(float64(got[i])-float64(want[i])))
		m = math.Max(m, math.Abs(float64(want[i])))
	}
	return d / math.Max(m, 1e-30)
}

// Attention at CLIP's real shapes (head size 64; T = 77 text, 50 ViT-B/32,
// 257 ViT-B/16 and 577 ViT-L/14-336, the last two partly or wholly through
// the global-memory path) against the CPU backend, forward and backward.
func TestAttentionCLIPShapes(t *testing.T) {
	c := cpu.New()
	// fp32 agrees with the CPU to rounding; the bf16 modes run head size 64 on
	// tensor cores (attn64_tc_*: bf16 operands, fp32 accumulation) up to
	// the longest T that fits in shared memory.
	for _, mode := range []struct {
		opts cuda.Options
		tol  float64
	}{{cuda.Options{}, 1e-4}, {cuda.Options{BF16: true}, 2e-2}, {cuda.Options{BF16Auto: true}, 2e-2}} {
		testAttentionShapes(t, gpu(t, mode.opts), c, mode.tol)
	}
}

func testAttentionShapes(t *testing.T, g *cuda.Backend, c *cpu.Backend, tol float64) {
	for _, s := range []struct {
		B, T, C, NH int
		causal      bool
	}{{3, 77, 512, 8, true}, {2, 50, 768, 12, false}, {4, 17, 128, 2, true}, {1, 257, 768, 12, false}, {1, 577, 128, 2, false}, {2, 577, 64, 1, true}} {
		rng := rand.New(rand.NewPCG(uint64(s.T), 1))
		n := s.B * s.T * s.C
		q, k, v, dOut := randSlice(rng, n, 1), randSlice(rng, n, 1), randSlice(rng, n, 1), randSlice(rng, n, 1)
		// The GPU overwrites NaN-filled gradients (SetGrad, as the model
		// asks); the CPU adds to zeros.
		nans := make([]float32, n)
		for i := range nans {
			nans[i] = float32(math.NaN())
		}
		run := func(be backend.Backend, mode backend.GradWrite) (out, dq, dk, dv []float32) {
			up := func(x []float32) backend.Buf { b := be.Alloc(len(x)); be.Upload(b, x); return b }
			qb, kb, vb, gb := up(q), up(k), up(v), up(dOut)
			ob := be.Alloc(n)
			scr := be.Alloc(be.AttentionScratchLen(s.B, s.T, s.NH))
			be.Attention(ob, scr, qb, kb, vb, s.B, s.T, s.C, s.NH, s.causal)
			dqb, dkb, dvb := be.Alloc(n), be.Alloc(n), be.Alloc(n)
			if mode == backend.SetGrad {
				dqb, dkb, dvb = up(nans), up(nans), up(nans)
			}
			be.AttentionBackward(dqb, dkb, dvb, gb, scr, qb, kb, vb, ob, s.B, s.T, s.C, s.NH, s.causal, mode)
			return down(be, ob), down(be, dqb), down(be, dkb), down(be, dvb)
		}
		o1, q1, k1, v1 := run(g, backend.SetGrad)
		o2, q2, k2, v2 := run(c, backend.AddGrad)
		for _, x := range []struct {
			name      string
			got, want []float32
		}{{"out", o1, o2}, {"dq", q1, q2}, {"dk", k1, k2}, {"dv", v1, v2}} {
			if e := relErr(x.got, x.want); !(e < tol) {
				t.Errorf("%s %+v %s: relative error %.2e", g.Name(), s, x.name, e)
			} else if tol > 1e-4 {
				t.Logf("%s %+v %s: relative error %.2e", g.Name(), s, x.name, e)
			}
		}
	}
}

// Large products (cuBLAS's tiled kernels, not only the small shapes of the
// conformance suite) against the CPU backend.
func TestLinearLargeAgainstCPU(t *testing.T) {
	for _, o := range []cuda.Options{{}, {BF16: true}, {BF16Auto: true}, {TF32: true}} {
		bf16 := o.BF16 || o.BF16Auto || o.TF32
		g := gpu(t, o)
		c := cpu.New()
		M, K, N := 640, 768, 2304
		if testing.Short() && emulated(g) {
			M, K, N = 96, 256, 384
		}
		rng := rand.New(rand.NewPCG(5, 5))
		in, w, bias, dOut := randSlice(rng, M*K, 1), randSlice(rng, N*K, 0.05), randSlice(rng, N, 1), randSlice(rng, M*N, 1)
		run := func(be backend.Backend) (out, dIn, dW, dB []float32) {
			up := func(x []float32) backend.Buf { b := be.Alloc(len(x)); be.Upload(b, x); return b }
			ib, wb, bb, gb := up(in), up(w), up(bias), up(dOut)
			ob := be.Alloc(M * N)
			be.Linear(ob, ib, wb, bb, M, K, N)
			di, dw, db := be.Alloc(M*K), be.Alloc(N*K), be.Alloc(N)
			be.LinearBackward(di, dw, db, gb, ib, wb, M, K, N, backend.AddGrad)
			return down(be, ob), down(be, di), down(be, dw), down(be, db)
		}
		o1, i1, w1, b1 := run(g)
		o2, i2, w2, b2 := run(c)
		tol := 1e-4
		if bf16 {
			tol = 2e-2
		}
		for _, x := range []struct {
			name      string
			got, want []float32
		}{{"out", o1, o2}, {"dIn", i1, i2}, {"dW", w1, w2}, {"dBias", b1, b2}} {
			e := relErr(x.got, x.want)
			t.Logf("%s %s: relative error %.2e", g.Name(), x.name, e)
			if !(e < tol) {
				t.Errorf("%s %s: relative error %.2e > %g", g.Name(), x.name, e, tol)
			}
		}
	}
}

// The bf16 copy of a weight follows every kind of write to the weight.
func TestBF16ShadowFollowsWrites(t *testing.T) {
	be := gpu(t, cuda.Options{BF16: true})
	M, K, N := 4, 40, 36 // wider than skinnyDim, so the bf16 copies are used
	rng := rand.New(rand.NewPCG(9, 9))
	// Values exactly representable in bf16, so every product is exact.
	exact := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.IntN(17)-8) / 4
		}
		return v
	}
	in, w0 := exact(M*K), exact(N*K)
	ref := func(w []float32) []float32 { return naiveLinear(in, w, M, K, N) }
	params := be.Alloc(N*K + 5) // the weight is a view, as in a flat parameter buffer
	w := params.Slice(5, N*K)
	ib, out := be.Alloc(M*K), be.Alloc(M*N)
	be.Upload(ib, in)
	be.Upload(w, w0)
	check := func(what string, wv []float32) {
		t.Helper()
		be.Linear(out, ib, w, nil, M, K, N)
		got, want := down(be, out), ref(wv)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("after %s: out[%d] = %v, want %v (stale bf16 weight?)", what, i, got[i], want[i])
			}
		}
	}
	check("upload", w0)
	check("second use (cached)", w0)
	be.Scale(w, 2, N*K)
	w1 := make([]float32, N*K)
	for i := range w1 {
		w1[i] = 2 * w0[i]
	}
	check("Scale", w1)
	// A write to a neighbouring range leaves the cache valid and correct.
	be.Upload(params.Slice(0, 5), []float32{1, 2, 3, 4, 5})
	check("write beside the weight", w1)
	// A write through another view overlapping one element.
	be.Upload(params.Slice(4, 2), []float32{9, 0.5})
	w1[0] = 0.5
	check("overlapping upload", w1)
	zero := make([]float32, N*K)
	be.Zero(params)
	check("Zero of the parent", zero)
	src := be.Alloc(N * K)
	be.Upload(src, w0)
	be.Copy(w, src)
	check("Copy", w0)
	g, m, v := be.Alloc(N*K), be.Alloc(N*K), be.Alloc(N*K)
	be.AdamW(w, g, m, v, N*K, 0, 0.9, 0.999, 1e-8, 0, 1) // lr 0: no change, still a write
	check("AdamW", w0)
	st := be.MemStats()
	t.Logf("pool: %+v", st)
	if st.InUse <= 0 || st.PeakInUse < st.InUse {
		t.Errorf("pool accounting: %+v", st)
	}
}

// Free returns memory to the pool, and reallocating the same sizes reuses it.
func TestPoolReuseOnDevice(t *testing.T) {
	be := gpu(t, cuda.Options{})
	sizes := []int{1000, 1 << 20, 3 << 20}
	var bufs []backend.Buf
	for _, n := range sizes {
		bufs = append(bufs, be.Alloc(n))
	}
	before := be.MemStats()
	for _, b := range bufs {
		be.Free(b)
	}
	for _, n := range sizes {
		b := be.Alloc(n)
		if got := down(be, b); got[n-1] != 0 || got[0] != 0 {
			t.Fatal("reused buffer not zero-filled")
		}
	}
	after := be.MemStats()
	if after.Allocs != before.Allocs || after.Reuses < before.Reuses+int64(len(sizes)) {
		t.Fatalf("no reuse: before %+v after %+v", before, after)
	}
	free, total, err := be.DeviceMemory()
	t.Logf("device memory: %d MiB free of %d MiB (%v)", free>>20, total>>20, err)
}

// naiveLinear is out[M,N] = in[M,K]·w[N,K]ᵀ in float32, the reference for
// products whose inputs are exact in bf16.
func naiveLinear(in, w []float32, M, K, N int) []float32 {
	out := make([]float32, M*N)
	for m := range M {
		for n := range N {
			var s float32
			for k := range K {
				s += in[m*K+k] * w[n*K+k]
			}
			out[m*N+n] = s
		}
	}
	return out
}
