//go:build amd64 && !purego

package simd

import "golang.org/x/sys/cpu"

// best is the highest level the CPU supports (x/sys/cpu also checks that
// the OS saves the registers).
var best = func() Level {
	x := cpu.X86
	switch {
	case x.HasAVX2 && x.HasFMA && x.HasAVX512F && x.HasAVX512DQ:
		return AVX512
	case x.HasAVX2 && x.HasFMA:
		return AVX2
	}
	return Go
}()
