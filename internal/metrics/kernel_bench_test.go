package metrics

import (
	"testing"

	"github.com/clipline/clipline/internal/simd"
)

// benchTile scores a 240-caption × 256-image block at d = 512 with level l's
// kernel, as Rank's pass 2 does.
func benchTile(b *testing.B, l simd.Level) {
	if l > simd.Available()[len(simd.Available())-1] {
		b.Skipf("no %v here", l)
	}
	const d, rows, cols = 512, 20 * blockRows, 8 * blockCols
	k := simd.KernelFor(l)
	ap := make([]float32, rows*d)
	bp := make([]float32, cols*d)
	for i := range ap {
		ap[i] = float32(i%7) * 0.1
	}
	for i := range bp {
		bp[i] = float32(i%5) * 0.1
	}
	c := make([]float32, rows*cols)
	b.SetBytes(int64(rows * cols * d * 2)) // "bytes" = flops, so MB/s reads as MFLOP/s
	for b.Loop() {
		for ip := range rows / k.MR {
			for jp := range cols / k.NR {
				k.Tile(d, ap[ip*k.MR*d:], bp[jp*k.NR*d:], c[ip*k.MR*cols+jp*k.NR:], cols, false)
			}
		}
	}
}

func BenchmarkTileAVX512(b *testing.B) { benchTile(b, simd.AVX512) }
func BenchmarkTileAVX2(b *testing.B)   { benchTile(b, simd.AVX2) }
func BenchmarkTileGo(b *testing.B)     { benchTile(b, simd.Go) }
