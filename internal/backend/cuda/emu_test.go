//go:build cudaemu

package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"
)

// The emulator runs the current kernels: the cgo build cache does not
// notice edits of kernels/clipline.cu, which emu.cpp includes.
func TestEmulatorKernelsCurrent(t *testing.T) {
	src, err := os.ReadFile("../../../kernels/clipline.cu")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(src)
	if got, want := emulatedKernelsSHA256(), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("the emulator was built from another clipline.cu (%s, source is %s): run make -C kernels, then go clean -cache", got, want)
	}
}
