//go:build cuda || cudaemu

package cuda_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/backend/cuda"
)

// SumSquaresMany equals the sum of SumSquares over the buffers bit for bit
// (the same partial sums, added in the same order) and waits once.
func TestSumSquaresMany(t *testing.T) {
	be := gpu(t, cuda.Options{})
	rng := rand.New(rand.NewPCG(7, 8))
	var bufs []backend.Buf
	var ns []int
	want := 0.0
	for _, n := range []int{1, 0, 37, 4096, 70000, 5} {
		x := be.Alloc(n + 3)
		be.Upload(x, randSlice(rng, n+3, 1))
		bufs, ns = append(bufs, x), append(ns, n)
		want += be.SumSquares(x, n)
	}
	s0 := be.HostSyncs()
	got := be.SumSquaresMany(bufs, ns)
	if d := be.HostSyncs() - s0; d != 1 {
		t.Errorf("SumSquaresMany waited %d times, want 1", d)
	}
	if got != want {
		t.Errorf("SumSquaresMany = %v, sum of SumSquares = %v", got, want)
	}
	if got := be.SumSquaresMany(nil, nil); got != 0 {
		t.Errorf("SumSquaresMany of nothing = %v", got)
	}
}

// With CLIPLINE_CUDA_PROFILE=1 every operation is counted under its name,
// nested products and conversions separately.
func TestProfile(t *testing.T) {
	t.Setenv("CLIPLINE_CUDA_PROFILE", "1")
	be := gpu(t, cuda.Options{BF16: true})
	if !be.Profiling() {
		t.Fatal("profiling requested but off")
	}
	be.ResetProfile()
	// Wider than the skinny products that skip the bf16 conversion.
	x, w, o := be.Alloc(8*48), be.Alloc(40*48), be.Alloc(8*40)
	for range 3 {
		be.Linear(o, x, w, nil, 8, 48, 40)
	}
	be.Add(o, o, o, 32)
	if err := be.Sync(); err != nil {
		t.Fatal(err)
	}
	be.Add(o, o, o, 32) // resolved by Profile itself
	prof, err := be.Profile()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for _, e := range prof {
		calls[e.Op] = e.Calls
		if !(e.GPUms >= 0 && e.HostMS >= 0) {
			t.Errorf("%s: negative time %+v", e.Op, e)
		}
	}
	for op, n := range map[string]int{"Linear": 3, "(gemm)": 3, "Add": 2, "Alloc": 3, "(bf16 convert)": 2, "Sync": 1} {
		if calls[op] != n {
			t.Errorf("%s: %d calls, want %d (profile %+v)", op, calls[op], n, prof)
		}
	}
	tab := cuda.FormatProfile(prof, 1)
	if !strings.Contains(tab, "Linear") || !strings.Contains(tab, "total") {
		t.Errorf("table:\n%s", tab)
	}
	t.Logf("\n%s", tab)
}

// An activation used by several products in a row (q, k and v's input) is
// converted to bf16 once, and again after any write to it.
func TestBF16ActivationReuse(t *testing.T) {
	t.Setenv("CLIPLINE_CUDA_PROFILE", "1")
	be := gpu(t, cuda.Options{BF16: true})
	const M, K, N = 4, 40, 36
	in := make([]float32, M*K)
	for i := range in {
		in[i] = float32(i%9-4) / 4 // exact in bf16
	}
	w := make([]float32, N*K)
	for i := range w {
		w[i] = float32(i%5-2) / 2
	}
	x, wb, o1, o2 := be.Alloc(M*K), be.Alloc(N*K), be.Alloc(M*N), be.Alloc(M*N)
	be.Upload(x, in)
	be.Upload(wb, w)
	be.ResetProfile()
	converts := func() int { return conversions(t, be) }
	want := func(in []float32) []float32 { return naiveLinear(in, w, M, K, N) }
	check := func(what string, o backend.Buf, in []float32) {
		t.Helper()
		got, ref := down(be, o), want(in)
		for i := range ref {
			if got[i] != ref[i] {
				t.Fatalf("%s: out[%d] = %v, want %v", what, i, got[i], ref[i])
			}
		}
	}
	be.Linear(o1, x, wb, nil, M, K, N)
	be.Linear(o2, x, wb, nil, M, K, N)
	if c := converts(); c != 2 { // the weight once, the input once
		t.Errorf("%d conversions for two products on the same input, want 2", c)
	}
	check("first product", o1, in)
	check("second product", o2, in)
	in[3] = 1.5
	be.Upload(x.Slice(3, 1), in[3:4])
	be.Linear(o1, x, wb, nil, M, K, N)
	check("after a write to the input", o1, in)
	if c := converts(); c != 3 {
		t.Errorf("%d conversions after the input was written, want 3", c)
	}
	// An activation written by Activate (or a layer norm) comes with its
	// bf16 copy: the product reads that instead of converting, and gets
	// what it would get from converting a copy of the activation.
	g, g2 := be.Alloc(M*K), be.Alloc(M*K)
	be.Activate(backend.QuickGELU, g, x, M*K)
	be.Linear(o1, g, wb, nil, M, K, N)
	if c := converts(); c != 3 {
		t.Errorf("%d conversions for a product of Activate's output, want still 3", c)
	}
	be.Copy(g2, g)
	be.Linear(o2, g2, wb, nil, M, K, N)
	if c := converts(); c != 4 {
		t.Errorf("%d conversions for a product of a copy, want 4", c)
	}
	if a, b := down(be, o1), down(be, o2); !slices.Equal(a, b) {
		t.Errorf("a product of Activate's bf16 copy differs from one of a converted copy: %v vs %v", a[:4], b[:4])
	}
}

// AdamWMany and ScaleMany equal AdamW and Scale applied buffer by buffer,
// bit for bit, over buffers of mixed sizes (one empty) and weight decays.
func TestManyUpdates(t *testing.T) {
	be := gpu(t, cuda.Options{})
	rng := rand.New(rand.NewPCG(3, 4))
	sizes := []int{37, 0, 4096, 70001, 5}
	decays := []float32{0.01, 0, 0.01, 0, 0.1}
	// Two copies of every tensor: one updated per buffer, one all at once.
	type set struct{ w, g, m, v []backend.Buf }
	var sets [2]set
	for _, n := range sizes {
		vals := [4][]float32{randSlice(rng, n, 1), randSlice(rng, n, 1), randSlice(rng, n, 0.1), randSlice(rng, n, 0.1)}
		for i := range vals[3] {
			vals[3][i] = float32(math.Abs(float64(vals[3][i]))) // a second moment is not negative
		}
		for s := range sets {
			bufs := [4]backend.Buf{}
			for k := range bufs {
				bufs[k] = be.Alloc(n)
				be.Upload(bufs[k], vals[k])
			}
			sets[s].w = append(sets[s].w, bufs[0])
			sets[s].g = append(sets[s].g, bufs[1])
			sets[s].m = append(sets[s].m, bufs[2])
			sets[s].v = append(sets[s].v, bufs[3])
		}
	}
	const lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
	for step := 1; step <= 3; step++ {
		for i, n := range sizes {
			be.Scale(sets[0].g[i], 0.75, n)
			be.AdamW(sets[0].w[i], sets[0].g[i], sets[0].m[i], sets[0].v[i], n, lr, b1, b2, eps, decays[i], step)
		}
		be.ScaleMany(sets[1].g, 0.75)
		be.AdamWMany(sets[1].w, sets[1].g, sets[1].m, sets[1].v, decays, lr, b1, b2, eps, step)
	}
	for i, n := range sizes {
		for k, pair := range [][2]backend.Buf{{sets[0].w[i], sets[1].w[i]}, {sets[0].g[i], sets[1].g[i]},
			{sets[0].m[i], sets[1].m[i]}, {sets[0].v[i], sets[1].v[i]}} {
			a, b := make([]float32, n), make([]float32, n)
			be.Download(a, pair[0])
			be.Download(b, pair[1])
			for j := range a {
				if math.Float32bits(a[j]) != math.Float32bits(b[j]) {
					t.Fatalf("buffer %d (n=%d), tensor %d, element %d: per buffer %g, all at once %g", i, n, k, j, a[j], b[j])
				}
			}
		}
	}
}

// Bytes uploaded from page-locked memory (AllocHostBytes) arrive like any
// others; freeing waits for the copy, and other slices are ignored.
func TestHostBytes(t *testing.T) {
	be := gpu(t, cuda.Options{})
	const B, S, P = 2, 8, 4
	host, err := be.AllocHostBytes(B * S * S * 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range host {
		host[i] = uint8(i * 7)
	}
	img := be.AllocBytes(len(host))
	be.UploadBytes(img, host)
	identity := make([]float32, 3*256)
	for i := range identity {
		identity[i] = float32(i % 256)
	}
	lut, cols := be.Alloc(3*256), be.Alloc(B*3*S*S)
	be.Upload(lut, identity)
	be.PatchifyImages(cols, img, lut, B, S, P)
	got := down(be, cols)
	c := cpu.New()
	cImg, cLut, cCols := c.AllocBytes(len(host)), c.Alloc(3*256), c.Alloc(B*3*S*S)
	c.UploadBytes(cImg, host)
	c.Upload(cLut, identity)
	c.PatchifyImages(cCols, cImg, cLut, B, S, P)
	be.FreeHostBytes(host)
	be.FreeHostBytes(make([]byte, 3)) // not page-locked: ignored
	if want := cpu.Data(cCols); !slices.Equal(got, want) {
		t.Errorf("patch rows of uploaded page-locked bytes differ from the CPU's: %v vs %v", got[:8], want[:8])
	}
	if err := be.Sync(); err != nil {
		t.Fatal(err)
	}
}

// The tensor-core attention (bf16 mode, head size 64) writes the bf16 copy
// of its output that out_proj's product reads: no conversion, and the
// product of a converted copy is the same.
func TestAttentionOutputBF16Copy(t *testing.T) {
	t.Setenv("CLIPLINE_CUDA_PROFILE", "1")
	be := gpu(t, cuda.Options{BF16: true})
	const B, T, NH, C, N = 2, 17, 1, 64, 48
	rng := rand.New(rand.NewPCG(5, 6))
	up := func(n int, scale float64) backend.Buf {
		b := be.Alloc(n)
		be.Upload(b, randSlice(rng, n, scale))
		return b
	}
	q, k, v, w := up(B*T*C, 1), up(B*T*C, 1), up(B*T*C, 1), up(N*C, 0.5)
	out, out2 := be.Alloc(B*T*C), be.Alloc(B*T*C)
	scr := be.Alloc(be.AttentionScratchLen(B, T, NH))
	o1, o2 := be.Alloc(B*T*N), be.Alloc(B*T*N)
	be.Linear(o2, out2, w, nil, B*T, C, N) // makes w's bf16 copy
	be.Attention(out, scr, q, k, v, B, T, C, NH, false)
	be.ResetProfile()
	be.Linear(o1, out, w, nil, B*T, C, N)
	converts := func() int { return conversions(t, be) }
	if c := converts(); c != 0 {
		t.Errorf("%d conversions for a product of attention's output, want 0", c)
	}
	be.Copy(out2, out)
	be.Linear(o2, out2, w, nil, B*T, C, N)
	if c := converts(); c != 1 {
		t.Errorf("%d conversions for a product of a copy, want 1", c)
	}
	if a, b := down(be, o1), down(be, o2); !slices.Equal(a, b) {
		t.Errorf("a product of attention's bf16 copy differs from one of a converted copy: %v vs %v", a[:4], b[:4])
	}
}

// conversions is the number of bf16 conversion passes profiled since the
// last ResetProfile.
func conversions(t *testing.T, be *cuda.Backend) int {
	t.Helper()
	prof, err := be.Profile()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range prof {
		if e.Op == "(bf16 convert)" {
			return e.Calls
		}
	}
	return 0
}
