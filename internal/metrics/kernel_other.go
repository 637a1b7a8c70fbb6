//go:build !amd64 || purego

package metrics

func kern12x32AVX512(a, b *float32, k int, c *float32, ldc int) { panic("unreachable") }
func kern6x16AVX2(a, b *float32, k int, c *float32, ldc int)    { panic("unreachable") }
func kern1x32AVX2(a, b *float32, k int, c *float32)             { panic("unreachable") }
