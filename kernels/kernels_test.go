package kernels

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// entries returns the kernel names declared extern "C" __global__ in src or
// .entry in PTX.
func entries(re *regexp.Regexp, src string) []string {
	var names []string
	for _, m := range re.FindAllStringSubmatch(src, -1) {
		names = append(names, m[1])
	}
	slices.Sort(names)
	return names
}

var (
	cuEntry  = regexp.MustCompile(`__global__\s+void\s+(\w+)\s*\(`)
	ptxEntry = regexp.MustCompile(`\.entry\s+(\w+)\s*\(`)
)

// The embedded PTX defines exactly the kernels of the source, so a kernel
// added to clipline.cu without `make -C kernels` fails here, not at run time
// on a GPU machine.
func TestPTXMatchesSource(t *testing.T) {
	src, err := os.ReadFile("clipline.cu")
	if err != nil {
		t.Fatal(err)
	}
	want := entries(cuEntry, string(src))
	got := entries(ptxEntry, PTX)
	if len(want) == 0 || !slices.Equal(want, got) {
		t.Fatalf("clipline.ptx is stale (run make -C kernels):\n source: %v\n ptx:    %v", want, got)
	}
}

// The PTX was made from the current source: make records the source's
// SHA-256 beside the PTX, as a quoted C string so the CUDA emulator can
// compile it in (nvcc's output is not byte-for-byte reproducible, so the
// hash, not a recompilation, is the check).
func TestPTXFromCurrentSource(t *testing.T) {
	src, err := os.ReadFile("clipline.cu")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := os.ReadFile("clipline.cu.sha256")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(src)
	if got := strings.Trim(strings.TrimSpace(string(rec)), `"`); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("clipline.ptx was made from another clipline.cu (recorded %s): run make -C kernels and commit", got)
	}
}
