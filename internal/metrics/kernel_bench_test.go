package metrics

import "testing"

func benchTile(b *testing.B, kind string) {
	const d = 512
	ap := make([]float32, 20*mr*d)
	bp := make([]float32, 8*nr*d)
	for i := range ap {
		ap[i] = float32(i%7) * 0.1
	}
	for i := range bp {
		bp[i] = float32(i%5) * 0.1
	}
	c := make([]float32, 20*mr*256)
	b.SetBytes(int64(20 * 8 * mr * nr * d * 2)) // "bytes" = flops, so MB/s reads as MFLOP/s
	for b.Loop() {
		for ip := range 20 {
			for jp := range 8 {
				tile(kind, ap[ip*mr*d:], bp[jp*nr*d:], d, c[ip*mr*256+jp*nr:], 256)
			}
		}
	}
}

func BenchmarkTileAVX512(b *testing.B) {
	if !hasAVX512 {
		b.Skip("no AVX-512")
	}
	benchTile(b, "avx512")
}

func BenchmarkTileAVX2(b *testing.B) {
	if !hasAVX2 {
		b.Skip("no AVX2")
	}
	benchTile(b, "avx2")
}

func BenchmarkTileGo(b *testing.B) { benchTile(b, "go") }
