//go:build cuda || cudaemu

package device

import "testing"

// In a cuda build, a cuda device either opens or fails with an error (no
// GPU here); the process must never exit from the driver's init.
func TestOpenCUDAWithTag(t *testing.T) {
	be, err := Open("cuda")
	if err != nil {
		t.Skipf("no usable GPU: %v", err)
	}
	defer Close(be)
	if be.Name() != "cuda:0" {
		t.Fatalf("Name = %q", be.Name())
	}
}
