// Package kernels holds the CUDA kernels of the GPU backend: the .cu sources
// and the PTX compiled from them (committed, so building clipline needs no
// nvcc). `make -C kernels` (or `make -f pipeline.mk kernels`) regenerates the
// PTX; kernels_test.go checks that it is in step with the sources.
package kernels

import _ "embed"

// PTX is the compute_80 PTX of clipline.cu, loaded with cuModuleLoadData; the
// driver JIT-compiles it for the GPU present.
//
//go:embed clipline.ptx
var PTX string
