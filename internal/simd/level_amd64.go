//go:build amd64 && !purego

package simd

import "golang.org/x/sys/cpu"

// best and bestBF16 are the highest fp32 and bf16 levels the CPU supports
// (x/sys/cpu also checks that the OS saves the registers).
var best, bestBF16 = Features{
	AVX2: cpu.X86.HasAVX2, FMA: cpu.X86.HasFMA,
	AVX512F: cpu.X86.HasAVX512F, AVX512DQ: cpu.X86.HasAVX512DQ, AVX512BF16: cpu.X86.HasAVX512BF16,
}.Levels()
