package cuda

import "testing"

// covered reports whether a grid-stride launch of l visits all n elements
// exactly once, by simulating the kernels' loop.
func gridStrideVisits(l launchDims, n int) []int {
	seen := make([]int, n)
	stride := l.Grid.X * l.Block.X
	for b := 0; b < l.Grid.X; b++ {
		for t := 0; t < l.Block.X; t++ {
			for i := b*l.Block.X + t; i < n; i += stride {
				seen[i]++
			}
		}
	}
	return seen
}

func TestElementwise1DCoversEveryElementOnce(t *testing.T) {
	for _, n := range []int{1, 255, 256, 257, 1000, 65536*3 + 7} {
		l := elementwise1D(n)
		if l.Block.X != blockThreads || l.Grid.X < 1 || l.Grid.X > maxGridBlocks {
			t.Fatalf("n=%d: bad launch %+v", n, l)
		}
		for i, c := range gridStrideVisits(l, n) {
			if c != 1 {
				t.Fatalf("n=%d: element %d visited %d times", n, i, c)
			}
		}
	}
	if l := elementwise1D(0); !l.empty() {
		t.Fatalf("n=0 must be an empty launch, got %+v", l)
	}
	// Huge n: the grid is capped and the grid-stride loop covers the rest.
	if l := elementwise1D(1 << 30); l.Grid.X != maxGridBlocks {
		t.Fatalf("grid not capped: %+v", l)
	}
}

func TestWarpPerRowGivesEveryRowAWarp(t *testing.T) {
	for _, rows := range []int{1, 7, 8, 9, 9856, 128 * 50} {
		l := warpPerRow(rows)
		warps := l.Grid.X * l.Block.X / 32
		if warps < rows || warps-rows >= l.Block.X/32 {
			t.Fatalf("rows=%d: %d warps in %+v", rows, warps, l)
		}
		if l.Block.X%32 != 0 {
			t.Fatalf("block not a whole number of warps: %+v", l)
		}
	}
}

// The row reduction visits each (row, column) once, simulated like the kernel.
func TestRowReduceCoversEveryRowOnce(t *testing.T) {
	for _, c := range []struct{ rows, cols int }{{1, 1}, {9856, 512}, {128, 39424}, {50, 768}, {3, 33}, {100000, 16}} {
		l := rowReduce(c.rows, c.cols)
		if l.Block != (dim3{32, 8, 1}) || l.Grid.Y < 1 || l.Grid.Y > 65535 {
			t.Fatalf("%+v: bad launch %+v", c, l)
		}
		if l.Grid.X*32 < c.cols || (l.Grid.X-1)*32 >= c.cols {
			t.Fatalf("%+v: column blocks %d", c, l.Grid.X)
		}
		seen := make([]int, c.rows)
		for by := 0; by < l.Grid.Y; by++ {
			for ty := 0; ty < 8; ty++ {
				for r := by*8 + ty; r < c.rows; r += 8 * l.Grid.Y {
					seen[r]++
				}
			}
		}
		for r, n := range seen {
			if n != 1 {
				t.Fatalf("%+v: row %d summed %d times", c, r, n)
			}
		}
	}
	if l := rowReduce(0, 10); !l.empty() {
		t.Fatalf("no rows must be an empty launch: %+v", l)
	}
}

func TestReduceBlocksBoundsPartials(t *testing.T) {
	for _, n := range []int{1, 1024, 1 << 20, 1 << 28} {
		l := reduceBlocks(n)
		if l.Grid.X < 1 || l.Grid.X > reduceMaxBlocks || l.Block.X != blockThreads {
			t.Fatalf("n=%d: %+v", n, l)
		}
	}
}

func TestAttentionSharedMemoryPlan(t *testing.T) {
	const smem48K = 48 * 1024
	// CLIP text (T=77) and ViT-B/32 vision (T=50) heads of 64 fit in the
	// default 48 KiB with K and V in shared memory.
	for _, T := range []int{50, 77} {
		l, kv := attention(128, T, 12, 64, smem48K)
		if !kv {
			t.Fatalf("T=%d: K/V should fit in shared memory", T)
		}
		want := (attnWarps*(2*64+2*T) + 2*T*65) * 4
		if l.Smem != want || l.Smem > smem48K {
			t.Fatalf("T=%d: smem %d, want %d", T, l.Smem, want)
		}
		if l.Grid.X != 128*12 || l.Block.X != attnWarps*32 {
			t.Fatalf("T=%d: %+v", T, l)
		}
	}
	// ViT-L/14-336 (T=577) needs global K/V even with H100's 227 KiB opt-in.
	l, kv := attention(4, 577, 16, 64, 227*1024)
	if kv || l.Smem != attnWarps*(2*64+2*577)*4 {
		t.Fatalf("T=577: kv=%v smem=%d", kv, l.Smem)
	}
	if attnScratchLen(2, 77, 8) != 2*2*8*77 {
		t.Fatal("scratch length")
	}
}

func TestAttention64Plan(t *testing.T) {
	// Text (T=77) and ViT-B/32 (T=50) fit the default 48 KiB; ViT-B/16
	// (T=197) needs an opt-in like H100's; ViT-L/14-336 (T=577) does not fit.
	for _, c := range []struct {
		T, smem int
		ok      bool
	}{{77, 48 << 10, true}, {50, 48 << 10, true}, {197, 48 << 10, false}, {197, 227 << 10, true}, {577, 227 << 10, false}} {
		l, ok := attention64(128, c.T, 12, c.smem)
		if ok != c.ok || l.Smem != (2*c.T*68+attn64Warps*2*c.T)*4 || l.Grid.X != 128*12 || l.Block.X != attn64Warps*32 {
			t.Errorf("T=%d smem %d: %+v ok=%v", c.T, c.smem, l, ok)
		}
	}
	if !aligned16(0, 16, 256) || aligned16(16, 28) {
		t.Error("aligned16")
	}
}

func TestVectorizedOnlyWhenAligned(t *testing.T) {
	if l, vec := vectorized(1024, 256, 4096); !vec || l.Grid.X != 1 {
		t.Errorf("aligned: %+v %v", l, vec)
	}
	if _, vec := vectorized(1022, 256, 4096); vec {
		t.Error("n not a multiple of 4 vectorized")
	}
	if l, vec := vectorized(1024, 256, 4096+28); vec || l.Grid.X != 4 {
		t.Errorf("misaligned view vectorized: %+v", l)
	}
}

// The tensor-core attention's shared memory follows the kernels' layout
// (bf16 [Tp][72] head tiles, fp32 [Tp][Tp+4] and bf16 [Tp][Tp+8] score
// tiles, a 1 KiB staging tile per warp, Tp = T rounded up to 16), every
// region starts 32-byte aligned as WMMA requires, and CLIP's text and
// ViT-B/32 sequences fit an H100 (227 KiB) and an A100 (163 KiB) while
// ViT-B/16's do not.
func TestAttentionTCPlan(t *testing.T) {
	for _, c := range []struct {
		T, smem int
		ok      bool
	}{{77, 227 << 10, true}, {50, 227 << 10, true}, {77, 163 << 10, true}, {1, 48 << 10, true},
		{80, 227 << 10, true}, {197, 227 << 10, false}, {0, 227 << 10, false}} {
		fwd, bwd, ok := attentionTC(128, c.T, 12, c.smem)
		Tp := (c.T + 15) / 16 * 16
		regions := []int{Tp * 144, Tp * 144, Tp * 144, Tp * (Tp + 4) * 4, Tp * (Tp + 8) * 2}
		sum := func(rs []int) int {
			s := 0
			for _, r := range rs {
				if s%32 != 0 {
					t.Errorf("T=%d: a region starts at byte %d, not 32-byte aligned", c.T, s)
				}
				s += r
			}
			return s + attnTCWarps*1024
		}
		wantFwd := sum(regions)
		wantBwd := sum([]int{Tp * 144, Tp * 144, Tp * 144, Tp * 144, Tp * (Tp + 4) * 4, Tp * (Tp + 4) * 4,
			Tp * (Tp + 8) * 2, Tp * (Tp + 8) * 2})
		if ok != c.ok || fwd.Smem != wantFwd || bwd.Smem != wantBwd || fwd.Grid.X != 128*12 || fwd.Block.X != attnTCWarps*32 {
			t.Errorf("T=%d smem %d: fwd %+v bwd %+v ok=%v (want fwd %d, bwd %d, ok %v)", c.T, c.smem, fwd, bwd, ok, wantFwd, wantBwd, c.ok)
		}
	}
}

// manyElementwise and reduceMany give one row of blocks per buffer and
// refuse more rows than a grid may have.
func TestManyBufferGeometry(t *testing.T) {
	l := manyElementwise(70001, 5)
	if l.Grid.Y != 5 || l.Grid.X*l.Block.X < 70001 || l.Block.X != blockThreads {
		t.Errorf("manyElementwise(70001, 5) = %+v", l)
	}
	if l := manyElementwise(0, 1); l.empty() {
		t.Errorf("manyElementwise of empty buffers launches nothing: %+v", l)
	}
	if l := reduceMany(12, 192); l.Grid.X != 12 || l.Grid.Y != 192 {
		t.Errorf("reduceMany(12, 192) = %+v", l)
	}
	for _, f := range []func(){func() { manyElementwise(1, maxGridY+1) }, func() { reduceMany(1, maxGridY+1) }} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("a launch over more than maxGridY buffers did not panic")
				}
			}()
			f()
		}()
	}
}

// The sequences of TestModelLongVisionSequences (head size 64) on the
// emulator's 227 KiB: the tensor-core attention declines all three, the
// head-size-64 kernels take 197 and 257, and 577 falls back to the scalar
// kernels with K/V read from global memory.
func TestAttentionLongSequencePaths(t *testing.T) {
	const smem = 227 << 10
	for _, c := range []struct {
		T          int
		attn64, kv bool
	}{{197, true, true}, {257, true, true}, {577, false, false}} {
		if _, _, ok := attentionTC(2, c.T, 1, smem); ok {
			t.Errorf("T=%d: tensor-core attention accepted", c.T)
		}
		if _, ok := attention64(2, c.T, 1, smem); ok != c.attn64 {
			t.Errorf("T=%d: attention64 ok=%v, want %v", c.T, ok, c.attn64)
		}
		if l, kv := attention(2, c.T, 1, 64, smem); kv != c.kv || l.Smem > smem {
			t.Errorf("T=%d: attention kv=%v smem=%d, want kv=%v within %d", c.T, kv, l.Smem, c.kv, smem)
		}
	}
}
