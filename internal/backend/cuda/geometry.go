package cuda

import "fmt"

// Launch geometry of the kernels in kernels/clipline.cu. Pure functions, so
// that they are unit-tested without a GPU.

const (
	// blockThreads is the block size of the 1-D kernels.
	blockThreads = 256
	// maxGridBlocks caps grid-stride launches: enough blocks to fill any
	// current GPU several times over, few enough to keep the launch cheap.
	maxGridBlocks = 65535
	// attnWarps is the number of warps per attention block.
	attnWarps = 8
	// reduceMaxBlocks bounds the partial sums of sum_squares_partial.
	reduceMaxBlocks = 1024
	// rowReduceTargetBlocks is the number of blocks sum_rows_acc aims for
	// (several per SM of the largest GPUs) when splitting the rows.
	rowReduceTargetBlocks = 1024
)

// dim3 is a launch's grid or block size.
type dim3 struct{ X, Y, Z int }

// launchDims is one kernel launch's geometry and dynamic shared memory.
type launchDims struct {
	Grid, Block dim3
	Smem        int
}

// empty reports a launch with no work (skipped: CUDA rejects a 0-size grid).
func (l launchDims) empty() bool { return l.Grid.X == 0 || l.Grid.Y == 0 || l.Grid.Z == 0 }

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// checkI32 panics when n does not fit the kernels' int parameters.
func checkI32(what string, n int) {
	if n < 0 || n > 1<<31-1 {
		panic(fmt.Sprintf("cuda: %s = %d out of range for a kernel launch", what, n))
	}
}

// elementwise1D covers n elements with grid-stride blocks of blockThreads.
func elementwise1D(n int) launchDims {
	checkI32("elements of an elementwise kernel", n)
	g := min(ceilDiv(n, blockThreads), maxGridBlocks)
	return launchDims{Grid: dim3{g, 1, 1}, Block: dim3{blockThreads, 1, 1}}
}

// vectorized is the geometry of the elementwise kernels that move float4s
// when every address is 16-byte aligned and n a multiple of 4 (vec, the
// kernels' last argument); otherwise one float per element.
func vectorized(n int, addrs ...uintptr) (launchDims, bool) {
	if n%4 == 0 && aligned16(addrs...) {
		return elementwise1D(n / 4), true
	}
	return elementwise1D(n), false
}

// warpPerRow gives each of rows rows one warp (blockThreads/32 rows a block).
func warpPerRow(rows int) launchDims {
	return launchDims{Grid: dim3{ceilDiv(rows, blockThreads/32), 1, 1}, Block: dim3{blockThreads, 1, 1}}
}

// rowReduce is the geometry of sum_rows_acc and layernorm_bwd_dwdb: blocks of
// 32 columns x 8 row lanes; grid.y splits the rows when there are few
// column blocks, so long reductions still fill the GPU.
func rowReduce(rows, cols int) launchDims {
	gx := ceilDiv(cols, 32)
	if gx == 0 || rows == 0 {
		return launchDims{Grid: dim3{0, 1, 1}, Block: dim3{32, 8, 1}}
	}
	gy := max(1, rowReduceTargetBlocks/gx)
	// Each thread should still sum a few rows: at least 4 per row lane.
	gy = min(gy, max(1, ceilDiv(rows, 8*4)), 65535)
	return launchDims{Grid: dim3{gx, gy, 1}, Block: dim3{32, 8, 1}}
}

// reduceBlocks is the geometry of sum_squares_partial; the grid size is the
// number of partial sums it writes.
func reduceBlocks(n int) launchDims {
	g := min(ceilDiv(n, blockThreads*4), reduceMaxBlocks)
	return launchDims{Grid: dim3{g, 1, 1}, Block: dim3{blockThreads, 1, 1}}
}

// manyElementwise is the launch of the *_many kernels over count buffers
// (at most maxGridY) of at most maxN elements: one row of blocks per
// buffer, each row striding over its buffer.
func manyElementwise(maxN, count int) launchDims {
	if count > maxGridY {
		panic(fmt.Sprintf("cuda: a launch over %d buffers (at most %d)", count, maxGridY))
	}
	g := min(max(ceilDiv(maxN, blockThreads), 1), maxGridBlocks)
	return launchDims{Grid: dim3{g, count, 1}, Block: dim3{blockThreads, 1, 1}}
}

// maxGridY is the largest grid height CUDA allows.
const maxGridY = 65535

// reduceMany is sum_squares_many's launch over count buffers (at most
// maxGridY) whose largest reduceBlocks grid is maxBlocks: one row of blocks
// per buffer.
func reduceMany(maxBlocks, count int) launchDims {
	if count > maxGridY {
		panic(fmt.Sprintf("cuda: reduceMany over %d buffers (at most %d per launch)", count, maxGridY))
	}
	return launchDims{Grid: dim3{maxBlocks, count, 1}, Block: dim3{blockThreads, 1, 1}}
}

// attention is the geometry of attn_fwd, attn_bwd_dq and attn_bwd_dkdv: one
// block per (batch, head), attnWarps warps. Each warp keeps 2*hd + 2*T
// floats; the head's two [T, hd] operands go to shared memory (rows padded to
// hd+1) when that fits in maxSmem bytes, and are otherwise read from global
// memory. kvSmem reports the choice (the kernels' kv_smem argument).
func attention(B, T, NH, hd, maxSmem int) (l launchDims, kvSmem bool) {
	warpFloats := attnWarps * (2*hd + 2*T)
	kvFloats := 2 * T * (hd + 1)
	l = launchDims{Grid: dim3{B * NH, 1, 1}, Block: dim3{attnWarps * 32, 1, 1}}
	if (warpFloats+kvFloats)*4 <= maxSmem {
		l.Smem = (warpFloats + kvFloats) * 4
		return l, true
	}
	l.Smem = warpFloats * 4
	return l, false
}

// attnTCWarps is the number of warps per block of the tensor-core attention
// kernels (one block per head, whose tiles go round the warps).
const attnTCWarps = 8

// attentionTC is the geometry of attn64_tc_fwd and attn64_tc_bwd: one
// block per (batch, head) and the shared memory each needs (the layout in
// the kernels' comments: bf16 [Tp, 72] head tiles, fp32 and bf16 [Tp, Tp]
// score tiles padded to Tp+4 and Tp+8 columns, a 16x16 fp32 staging tile
// per warp; Tp is T rounded up to 16). ok is false when the backward's
// exceeds maxSmem bytes.
func attentionTC(B, T, NH, maxSmem int) (fwd, bwd launchDims, ok bool) {
	Tp := ceilDiv(T, 16) * 16
	head := Tp * 72 * 2
	scores32 := Tp * (Tp + 4) * 4
	scores16 := Tp * (Tp + 8) * 2
	stage := attnTCWarps * 256 * 4
	fwd = launchDims{Grid: dim3{B * NH, 1, 1}, Block: dim3{attnTCWarps * 32, 1, 1},
		Smem: 3*head + scores32 + scores16 + stage}
	bwd = fwd
	bwd.Smem = 4*head + 2*scores32 + 2*scores16 + stage
	return fwd, bwd, T > 0 && bwd.Smem <= maxSmem
}

// attn64Warps is the number of warps per block of the head-size-64
// attention kernels: they hold a row (two in the backward) in registers,
// ~170 registers a thread, so smaller blocks let more of them share an SM.
const attn64Warps = 4

// attention64 is the geometry of attn64_fwd, attn64_bwd_dq and
// attn64_bwd_dkdv (head size 64): one block per (batch, head), the head's
// two [T, 64] operands in shared memory with rows padded to 68 floats, and
// 2*T floats per warp. ok is false when that exceeds maxSmem bytes.
func attention64(B, T, NH, maxSmem int) (l launchDims, ok bool) {
	l = launchDims{Grid: dim3{B * NH, 1, 1}, Block: dim3{attn64Warps * 32, 1, 1},
		Smem: (2*T*68 + attn64Warps*2*T) * 4}
	return l, l.Smem <= maxSmem
}

// aligned16 reports whether every non-zero address is a multiple of 16
// bytes (the float4 loads of the head-size-64 kernels need it).
func aligned16(addrs ...uintptr) bool {
	for _, a := range addrs {
		if a%16 != 0 {
			return false
		}
	}
	return true
}

// attnScratchLen is AttentionScratchLen: the forward's log-sum-exp per
// (batch, head, query) and, during backward, D = dOut·out per row.
func attnScratchLen(B, T, NH int) int { return 2 * B * NH * T }
