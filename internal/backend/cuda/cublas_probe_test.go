//go:build cuda && !cudaemu

package cuda

import "testing"

// cuBLAS is found and every function clipline calls resolves, with or
// without a GPU (creating a handle is left to the GPU tests).
func TestCublasSymbolsResolve(t *testing.T) {
	p, err := probeCublas()
	if err != nil {
		t.Skipf("no cuBLAS on this machine: %v", err)
	}
	t.Logf("cuBLAS: %s", p)
}
