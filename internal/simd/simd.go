// Package simd holds the SIMD micro-kernels that the CPU backend's GEMM and
// the retrieval metrics' scoring share, the panel packing they read, and
// the one switch that picks an instruction set from the CPU's features.
//
// The assembly (kernel_amd64.s, and the CPU backend's vector routines) is
// written by internal/asmgen; the purego build tag, or another
// architecture, leaves only the portable Go code.
package simd

//go:generate go run ../asmgen simd

import (
	"fmt"
	"os"
)

// Level is an instruction set the kernels are written for.
type Level int

const (
	Go     Level = iota // portable Go
	AVX2                // AVX2 and FMA
	AVX512              // AVX-512 F and DQ, with AVX2 and FMA
)

var levelNames = [...]string{Go: "go", AVX2: "avx2", AVX512: "avx512"}

// String is the level's name as CLIPLINE_CPU_KERNEL spells it.
func (l Level) String() string { return levelNames[l] }

// Available lists the levels this CPU, OS and build can run, lowest first.
func Available() []Level {
	var ls []Level
	for l := Go; l <= best; l++ {
		ls = append(ls, l)
	}
	return ls
}

// Selected is the level in use: the best available, unless the environment
// variable CLIPLINE_CPU_KERNEL names another (go, avx2 or avx512), for
// debugging and benchmarks. One that is not available here falls back to
// the best, with a message on stderr.
func Selected() Level { return selected }

var selected = choose(os.Getenv("CLIPLINE_CPU_KERNEL"))

func choose(want string) Level {
	if want == "" {
		return best
	}
	for _, l := range Available() {
		if l.String() == want {
			return l
		}
	}
	fmt.Fprintf(os.Stderr, "simd: CLIPLINE_CPU_KERNEL=%s is not available here; using %s\n", want, best)
	return best
}
