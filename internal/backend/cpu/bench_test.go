package cpu_test

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/cputime"
)

// Run with: go test -bench . -run '^$' ./internal/backend/cpu/
// (CLIPLINE_CPU_KERNEL=go|avx2|avx512 picks the simd level: the GEMM
// micro-kernel and the vector loops.)

func randBuf(be backend.Backend, n int, rng *rand.Rand) backend.Buf {
	b := be.Alloc(n)
	d := cpu.Data(b)
	for i := range d {
		d[i] = float32(rng.Float64()*2 - 1)
	}
	return b
}

// loop runs f b.N times and reports GFLOP/s of wall-clock time and GFLOP
// per CPU-second (the per-core rate, insensitive to other processes on a
// shared machine).
func loop(b *testing.B, flops float64, f func()) {
	c0 := cputime.Process()
	for b.Loop() {
		f()
	}
	c := cputime.Process() - c0
	if flops == 0 {
		return
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if c > 0 {
		b.ReportMetric(flops*float64(b.N)/c.Seconds()/1e9, "GFLOP/cpu-s")
	}
}

// ViT-B/32 at batch 32 has M = 32·50 = 1600 rows, C = 768, MLP 3072; the
// text tower at batch 32 has M = 32·77 = 2464 rows, C = 512, MLP 2048.
// The last two are LoRA's rank-16 products x·Aᵀ and (x·Aᵀ)·Bᵀ.
var gemmShapes = []struct{ M, K, N int }{
	{1600, 768, 768}, {1600, 768, 3072}, {1600, 3072, 768},
	{2464, 512, 512}, {2464, 512, 2048},
	{1600, 768, 16}, {1600, 16, 768},
}

// BenchmarkLinear measures the three products: forward in·Wᵀ (+bias),
// dIn += dOut·W and dW += dOutᵀ·in.
func BenchmarkLinear(b *testing.B) {
	be := cpu.New()
	b.Logf("kernel %s, %d workers", be.KernelName(), be.Workers())
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range gemmShapes {
		in, w, bias := randBuf(be, s.M*s.K, rng), randBuf(be, s.N*s.K, rng), randBuf(be, s.N, rng)
		out, dOut := be.Alloc(s.M*s.N), randBuf(be, s.M*s.N, rng)
		dIn, dW := be.Alloc(s.M*s.K), be.Alloc(s.N*s.K)
		flops := 2 * float64(s.M) * float64(s.K) * float64(s.N)
		name := fmt.Sprintf("M%d_K%d_N%d", s.M, s.K, s.N)
		b.Run("fwd/"+name, func(b *testing.B) {
			loop(b, flops, func() { be.Linear(out, in, w, bias, s.M, s.K, s.N) })
		})
		b.Run("dIn/"+name, func(b *testing.B) {
			loop(b, flops, func() { be.LinearBackward(dIn, nil, nil, dOut, in, w, s.M, s.K, s.N, backend.AddGrad) })
		})
		b.Run("dW/"+name, func(b *testing.B) {
			loop(b, flops, func() { be.LinearBackward(nil, dW, nil, dOut, in, w, s.M, s.K, s.N, backend.AddGrad) })
		})
	}
}

// BenchmarkLinearBF16 is BenchmarkLinear's forward product in bf16 mode
// (cpu,bf16: the weight packed once, activations rounded and packed per
// product). LoRA's skinny products stay fp32 there and are left out.
func BenchmarkLinearBF16(b *testing.B) {
	be := cpu.NewBF16(runtime.GOMAXPROCS(0))
	b.Logf("kernel %s, %d workers", be.KernelName(), be.Workers())
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range gemmShapes[:5] {
		in, w, bias := randBuf(be, s.M*s.K, rng), randBuf(be, s.N*s.K, rng), randBuf(be, s.N, rng)
		out := be.Alloc(s.M * s.N)
		be.Linear(out, in, w, bias, s.M, s.K, s.N) // packs w
		b.Run(fmt.Sprintf("fwd/M%d_K%d_N%d", s.M, s.K, s.N), func(b *testing.B) {
			loop(b, 2*float64(s.M)*float64(s.K)*float64(s.N), func() { be.Linear(out, in, w, bias, s.M, s.K, s.N) })
		})
	}
}

func BenchmarkAttention(b *testing.B) {
	be := cpu.New()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, s := range []struct {
		name        string
		B, T, C, NH int
		causal      bool
	}{
		{"vision_B32_T50_C768_NH12", 32, 50, 768, 12, false},
		{"text_B32_T77_C512_NH8_causal", 32, 77, 512, 8, true},
	} {
		n := s.B * s.T * s.C
		q, k, v := randBuf(be, n, rng), randBuf(be, n, rng), randBuf(be, n, rng)
		out, dOut := be.Alloc(n), randBuf(be, n, rng)
		dQ, dK, dV := be.Alloc(n), be.Alloc(n), be.Alloc(n)
		scratch := be.Alloc(be.AttentionScratchLen(s.B, s.T, s.NH))
		// q·kᵀ and p·v: 2·T·T·C multiply-adds per batch item, counted in
		// full even when causal (the CPU computes the masked half too).
		flops := 4 * float64(s.B) * float64(s.T) * float64(s.T) * float64(s.C)
		b.Run("fwd/"+s.name, func(b *testing.B) {
			loop(b, flops, func() { be.Attention(out, scratch, q, k, v, s.B, s.T, s.C, s.NH, s.causal) })
		})
		b.Run("bwd/"+s.name, func(b *testing.B) {
			be.Attention(out, scratch, q, k, v, s.B, s.T, s.C, s.NH, s.causal)
			loop(b, 2*flops, func() {
				be.AttentionBackward(dQ, dK, dV, dOut, scratch, q, k, v, out, s.B, s.T, s.C, s.NH, s.causal, backend.AddGrad)
			})
		})
	}
}

// BenchmarkElementwise covers the per-layer non-GEMM work at ViT-B/32,
// batch 32: layer norm over 1600×768, quick_gelu and a dropout mask over
// 1600×3072.
func BenchmarkElementwise(b *testing.B) {
	be := cpu.New()
	rng := rand.New(rand.NewPCG(5, 6))
	rows, C, H := 1600, 768, 3072
	x, w, bb := randBuf(be, rows*C, rng), randBuf(be, C, rng), randBuf(be, C, rng)
	out, mean, rstd := be.Alloc(rows*C), be.Alloc(rows), be.Alloc(rows)
	dx, dw, db := be.Alloc(rows*C), be.Alloc(C), be.Alloc(C)
	h, hOut, dh := randBuf(be, rows*H, rng), be.Alloc(rows*H), be.Alloc(rows*H)
	b.Run("LayerNorm", func(b *testing.B) {
		loop(b, 0, func() { be.LayerNorm(out, mean, rstd, x, w, bb, rows, C, 1e-5) })
	})
	b.Run("LayerNormBackward", func(b *testing.B) {
		loop(b, 0, func() { be.LayerNormBackward(dx, dw, db, out, x, w, mean, rstd, rows, C) })
	})
	for _, act := range []backend.Activation{backend.QuickGELU, backend.GELU, backend.GELUTanh} {
		b.Run(act.String(), func(b *testing.B) {
			loop(b, 0, func() { be.Activate(act, hOut, h, rows*H) })
		})
		b.Run(act.String()+"Backward", func(b *testing.B) {
			loop(b, 0, func() { be.ActivateBackward(act, dh, hOut, h, rows*H, backend.AddGrad) })
		})
	}
	b.Run("Dropout", func(b *testing.B) {
		loop(b, 0, func() { be.Dropout(hOut, h, 0.1, 42, rows*H) })
	})
}
