package train

import "math/bits"

// EpochOrder is the order in which epoch `epoch` (0-based) visits the n
// pairs: a Fisher-Yates permutation driven by a generator keyed by (seed,
// epoch) alone, so a resumed run recomputes the same order and skips the
// batches already done. The generator is written out here (SplitMix64,
// Lemire's bounded ints) so the order cannot change with the Go release.
func EpochOrder(n int, seed int64, epoch int) []int32 {
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	g := splitmix{state: mix(uint64(seed), uint64(epoch)+0x9e3779b97f4a7c15)}
	for i := n - 1; i > 0; i-- {
		j := g.below(uint64(i + 1))
		order[i], order[j] = order[j], order[i]
	}
	return order
}

// Batches cuts n items into consecutive batches of size b; the last may be
// smaller. It returns the start offsets plus n at the end.
func Batches(n, b int) []int {
	var cuts []int
	for s := 0; s < n; s += b {
		cuts = append(cuts, s)
	}
	return append(cuts, n)
}

type splitmix struct{ state uint64 }

func (g *splitmix) next() uint64 {
	g.state += 0x9e3779b97f4a7c15
	z := g.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// below returns a uniform integer in [0, n) (Lemire's multiply-shift with
// rejection, so there is no modulo bias).
func (g *splitmix) below(n uint64) uint64 {
	hi, lo := bits.Mul64(g.next(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(g.next(), n)
		}
	}
	return hi
}

// mix hashes a few integers into one seed (for per-step dropout seeds).
func mix(vals ...uint64) uint64 {
	h := uint64(0x243f6a8885a308d3)
	for _, v := range vals {
		h ^= v
		h *= 0x9e3779b97f4a7c15
		h ^= h >> 29
		h *= 0xbf58476d1ce4e5b9
		h ^= h >> 32
	}
	return h
}
