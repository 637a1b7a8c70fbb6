package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Fractions is how many items a seeded draw puts in val and test; the rest
// are train.
type Fractions struct {
	Val, Test float64
	Seed      uint64
}

// Zero reports whether nothing is held out.
func (f Fractions) Zero() bool { return f.Val == 0 && f.Test == 0 }

// Check refuses negative fractions and ones that leave no train items.
func (f Fractions) Check() error {
	if f.Val < 0 || f.Test < 0 || f.Val+f.Test >= 1 {
		return fmt.Errorf("val fraction %g and test fraction %g must be >= 0 and leave room for train (sum < 1)", f.Val, f.Test)
	}
	return nil
}

// splitStream is the PCG stream of the split draw, apart from every other
// generator seeded with the same seed (synthetic's per-image ones).
const splitStream = 0x5b1d_5eed

// Draw assigns n items to splits: round(n*Test) test and round(n*Val) val
// items picked by a permutation seeded with Seed, the rest train.
// Deterministic in (n, f); the caller decides the items' order.
func (f Fractions) Draw(n int) []string {
	split := make([]string, n)
	for i := range split {
		split[i] = Train
	}
	nTest := int(math.Round(float64(n) * f.Test))
	nVal := int(math.Round(float64(n) * f.Val))
	if nTest+nVal > n {
		nVal = n - nTest
	}
	perm := rand.New(rand.NewPCG(f.Seed, splitStream)).Perm(n)
	for k, i := range perm {
		switch {
		case k < nTest:
			split[i] = Test
		case k < nTest+nVal:
			split[i] = Val
		}
	}
	return split
}
