//go:build !amd64

package cpu

// Only the portable micro-kernel exists off amd64.

func availableKernels() []*microKernel { return []*microKernel{&goKernel} }
