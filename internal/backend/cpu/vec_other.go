//go:build !amd64

package cpu

// Without assembly every element goes through the Go loops.

const (
	hasAVX2FMA  = false
	hasAVX512DQ = false
)

func expVec(dst, src []float32) int                    { return 0 }
func quickGELUVec(out, in []float32) int               { return 0 }
func quickGELUBackwardVec(dIn, dOut, in []float32) int { return 0 }

func dropoutVec(mask []float32, p, keep float32, seed, start uint64) int { return 0 }
