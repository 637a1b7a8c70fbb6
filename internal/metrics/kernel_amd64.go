//go:build amd64 && !purego

package metrics

import "golang.org/x/sys/cpu"

//go:noescape
func kern12x32AVX512(a, b *float32, k int, c *float32, ldc int)

//go:noescape
func kern6x16AVX2(a, b *float32, k int, c *float32, ldc int)

//go:noescape
func kern1x32AVX2(a, b *float32, k int, c *float32)

func init() {
	hasAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasAVX512 = hasAVX2 && cpu.X86.HasAVX512F
}
