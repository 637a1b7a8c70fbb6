//go:build amd64 && !amd64.v3

// GOAMD64=v3 lets the compiler fuse a·b+c in the Go code, which changes
// its results: the recorded digests hold for v1 and v2.

package cpu_test

import (
	"hash"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/simd"
)

// goldenDigests are outputDigests at commit a92a822, before the kernels
// moved to internal/simd and the vector loops into per-level tables: the
// Go code's and the assembly levels' (AVX2 and AVX-512 agree bit for bit:
// the same FMA kernels, and the AVX-512 dropout mask is exact). The assembly
// levels' elementwise and attention digests were recorded again when the
// elementwise ops' tails moved from the scalar Go routines to the vector
// ones (so an element's value no longer depends on its position).
var goldenDigests = map[string]map[string]uint64{
	"go":  {"linear": 0x834439a0e73c0a8e, "layernorm": 0xabbaf0b9d02d45d0, "elementwise": 0x9d3c4123339ca7ff, "attention": 0x87af979c89adb527},
	"asm": {"linear": 0x161a6c3a57c3969d, "layernorm": 0x7427adf4579a9d17, "elementwise": 0xdab697383c78a6a7, "attention": 0x394dd9fcd63cc70e},
}

// TestOutputsUnchanged checks every level's outputs, bit for bit, against
// the digests recorded before the refactoring (and so the levels against
// each other); with -tags purego only the Go level runs.
func TestOutputsUnchanged(t *testing.T) {
	for _, l := range simd.Available() {
		got := outputDigests(func(workers int) *cpu.Backend { return cpu.NewLevel(workers, l) })
		class := "asm"
		if l == simd.Go {
			class = "go"
		}
		for name, want := range goldenDigests[class] {
			if got[name] != want {
				t.Errorf("%v: %s outputs digest %#x, recorded %#x", l, name, got[name], want)
			}
		}
	}
}

// outputDigests runs the products, layer norm, elementwise ops and
// attention, forward and backward, at shapes around the kernels' tile and
// vector edges on backends of 1, 2 and 3 workers, and returns an FNV-1a
// digest of each group's output bits.
func outputDigests(newBE func(workers int) *cpu.Backend) map[string]uint64 {
	hs := map[string]hash.Hash64{}
	sum := func(name string, bufs ...backend.Buf) {
		h := hs[name]
		if h == nil {
			h = fnv.New64a()
			hs[name] = h
		}
		for _, b := range bufs {
			for _, v := range cpu.Data(b) {
				u := math.Float32bits(v)
				h.Write([]byte{byte(u), byte(u >> 8), byte(u >> 16), byte(u >> 24)})
			}
		}
	}
	for _, workers := range []int{1, 2, 3} {
		be := newBE(workers)
		rng := rand.New(rand.NewPCG(11, uint64(workers)))
		rnd := func(n int) backend.Buf {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(rng.NormFloat64())
			}
			return cpu.Wrap(v)
		}
		for _, s := range [][3]int{{1, 1, 1}, {7, 17, 3}, {13, 33, 257}, {97, 50, 300}, {200, 780, 40}, {64, 512, 96}, {12, 32, 256}} {
			M, K, N := s[0], s[1], s[2]
			in, w, bias := rnd(M*K), rnd(N*K), rnd(N)
			out := be.Alloc(M * N)
			be.Linear(out, in, w, bias, M, K, N)
			be.LinearAdd(out, in, w, M, K, N)
			dOut := rnd(M * N)
			dIn, dW, dB := rnd(M*K), rnd(N*K), rnd(N)
			be.LinearBackward(dIn, dW, dB, dOut, in, w, M, K, N, backend.AddGrad)
			dIn2, dW2, dB2 := be.Alloc(M*K), be.Alloc(N*K), be.Alloc(N)
			be.LinearBackward(dIn2, dW2, dB2, dOut, in, w, M, K, N, backend.SetGrad)
			sum("linear", out, dIn, dW, dB, dIn2, dW2, dB2)
		}
		for _, C := range []int{64, 30, 8, 5} {
			rows := 37
			x, w, b := rnd(rows*C), rnd(C), rnd(C)
			out, mean, rstd := be.Alloc(rows*C), be.Alloc(rows), be.Alloc(rows)
			be.LayerNorm(out, mean, rstd, x, w, b, rows, C, 1e-5)
			dOut := rnd(rows * C)
			dIn, dW, dB := rnd(rows*C), rnd(C), rnd(C)
			be.LayerNormBackward(dIn, dW, dB, dOut, x, w, mean, rstd, rows, C)
			dIn2 := rnd(rows * C)
			be.LayerNormBackward(dIn2, nil, nil, dOut, x, w, mean, rstd, rows, C)
			dW3, dB3 := rnd(C), rnd(C)
			be.LayerNormBackward(nil, dW3, dB3, dOut, x, w, mean, rstd, rows, C)
			dW4 := rnd(C)
			be.LayerNormBackward(nil, dW4, nil, dOut, x, w, mean, rstd, rows, C)
			dIn5, dB5 := rnd(rows*C), rnd(C)
			be.LayerNormBackward(dIn5, nil, dB5, dOut, x, w, mean, rstd, rows, C)
			sum("layernorm", out, mean, rstd, dIn, dW, dB, dIn2, dW3, dB3, dW4, dIn5, dB5)
		}
		for _, n := range []int{1, 9, 1000, 70001} {
			x := rnd(n)
			o := be.Alloc(n)
			be.Activate(backend.QuickGELU, o, x, n)
			dOut := rnd(n)
			dIn := rnd(n)
			be.ActivateBackward(backend.QuickGELU, dIn, dOut, x, n, backend.AddGrad)
			dIn2 := rnd(n)
			be.ActivateBackward(backend.QuickGELU, dIn2, dOut, x, n, backend.SetGrad)
			o3, packed := be.Alloc(n), be.Alloc(backend.PackedLen(n))
			be.ActivatePacked(backend.QuickGELU, o3, x, packed, n)
			dIn4 := rnd(n)
			be.ActivateBackwardPacked(backend.QuickGELU, dIn4, dOut, packed, n, backend.AddGrad)
			o5, dIn6 := be.Alloc(n), rnd(n)
			be.Dropout(o5, x, 0.3, 77, n)
			be.DropoutBackward(dIn6, dOut, 0.3, 77, n)
			sum("elementwise", o, dIn, dIn2, o3, packed, dIn4, o5, dIn6)
		}
		for _, s := range [][4]int{{2, 7, 16, 2}, {1, 77, 64, 4}, {3, 50, 48, 3}, {2, 9, 128, 2}} {
			B, T, C, NH := s[0], s[1], s[2], s[3]
			for _, causal := range []bool{false, true} {
				q, k, v := rnd(B*T*C), rnd(B*T*C), rnd(B*T*C)
				out, scratch := be.Alloc(B*T*C), be.Alloc(be.AttentionScratchLen(B, T, NH))
				be.Attention(out, scratch, q, k, v, B, T, C, NH, causal)
				dOut := rnd(B * T * C)
				dQ, dK, dV := rnd(B*T*C), rnd(B*T*C), rnd(B*T*C)
				be.AttentionBackward(dQ, dK, dV, dOut, scratch, q, k, v, out, B, T, C, NH, causal, backend.AddGrad)
				dQ2 := be.Alloc(B * T * C)
				be.AttentionBackward(dQ2, nil, nil, dOut, scratch, q, k, v, out, B, T, C, NH, causal, backend.SetGrad)
				sum("attention", out, scratch, dQ, dK, dV, dQ2)
			}
		}
	}
	d := map[string]uint64{}
	for name, h := range hs {
		d[name] = h.Sum64()
	}
	return d
}
