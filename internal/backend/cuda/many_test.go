//go:build cuda || cudaemu

package cuda_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/backend/cuda"
)

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
