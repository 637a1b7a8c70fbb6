package kernels

import (
	"os"
	"os/exec"
	"path/filepath"
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

// With nvcc installed, compiling the source again gives the committed PTX.
func TestPTXRegenerates(t *testing.T) {
	nvcc, err := exec.LookPath("nvcc")
	if err != nil {
		t.Skip("nvcc not installed; skipping the PTX regeneration check")
	}
	// Another nvcc release emits different (equally valid) PTX text.
	if v, err := exec.Command(nvcc, "--version").Output(); err != nil || !strings.Contains(string(v), "release 11.8") {
		t.Skip("nvcc is not CUDA 11.8, the release the committed PTX comes from")
	}
	out := filepath.Join(t.TempDir(), "clipline.ptx")
	cmd := exec.Command(nvcc, "-ptx", "-arch=compute_80", "-O3", "-o", out, "clipline.cu")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nvcc: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != PTX {
		t.Fatal("clipline.ptx differs from what nvcc makes of clipline.cu: run make -C kernels and commit")
	}
}
