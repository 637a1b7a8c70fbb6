//go:build cuda && !cudaemu

package cuda

import (
	"errors"
	"strings"
	"testing"
)

// cuBLAS is found and every function clipline calls resolves, with or
// without a GPU (creating a handle is left to the GPU tests). Only a
// machine without any cuBLAS skips: one that loads but lacks a function
// fails.
func TestCublasSymbolsResolve(t *testing.T) {
	p, err := probeCublas()
	if errors.Is(err, errLibAbsent) {
		t.Skipf("no cuBLAS on this machine: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cuBLAS: %s", p)
}

// The C shim tells a library that does not load from one that loads
// without cuBLAS's functions (libc).
func TestCublasProbeMissingSymbol(t *testing.T) {
	cublasMu.Lock()
	inUse := cublasPath != ""
	cublasMu.Unlock()
	if inUse {
		t.Skip("an earlier test loaded cuBLAS; the probe returns it")
	}
	_, err := probeCublasIn([]string{"/nonexistent/libcublas.so.12"})
	if !errors.Is(err, errLibAbsent) {
		t.Errorf("missing file: %v, want errLibAbsent", err)
	}
	_, err = probeCublasIn([]string{"/nonexistent/libcublas.so.12", "libc.so.6"})
	if err == nil || errors.Is(err, errLibAbsent) || !strings.Contains(err.Error(), "symbol cublasCreate_v2 missing") {
		t.Errorf("libc: %v, want a missing cublasCreate_v2", err)
	}
}
