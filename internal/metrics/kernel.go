package metrics

import "github.com/clipline/clipline/internal/simd"

// Scores are dot products computed by the simd micro-kernels over packed
// panels: captions in panels of the kernel's MR rows, images in panels of
// its NR columns, both k-major, so the inner loop streams both operands
// contiguously.
//
// Every score, whichever kernel computes it, is one lane accumulating
// a[k]·b[k] in k order from zero (fused in the assembly kernels), so a given
// pair always gets the bit-identical score, which the rank computation
// depends on: it compares a relevant item's score, computed alone by the
// kernel's Row, with the same score inside a Tile.

// Block sizes are rounded to multiples of every kernel's MR and NR, so the
// blocks, and with them the order of equal scores, are the same whichever
// kernel runs.
const (
	blockRows = 12
	blockCols = 32
)

// scoreLevel is the simd level whose kernel Rank uses (tests change it).
var scoreLevel = simd.Selected()
