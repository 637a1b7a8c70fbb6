package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/testreq"
)

// TestVDPBF16PSEncoding assembles every VDPBF16PS the generator writes
// with GNU as (which knows the mnemonic) and requires the same bytes.
func TestVDPBF16PSEncoding(t *testing.T) {
	for _, tool := range []string{"as", "objcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			testreq.Missing(t, "CLIPLINE_REQUIRE_BINUTILS", "the VDPBF16PS encoding check", tool+" is not on PATH", "apt-get install binutils")
		}
	}
	for _, tg := range targets {
		if tg.name == "simd" {
			generate(tg) // records the register triples used
		}
	}
	var used [][3]int
	for k := range vdpbf16psUsed {
		used = append(used, k)
	}
	if len(used) < 24 {
		t.Fatalf("the generator wrote %d VDPBF16PS register combinations, want the 12×32 kernel's 24", len(used))
	}
	sort.Slice(used, func(i, j int) bool { return fmt.Sprint(used[i]) < fmt.Sprint(used[j]) })
	var src strings.Builder
	var want []byte
	for _, r := range used {
		// AT&T order: sources first, destination last.
		fmt.Fprintf(&src, "\tvdpbf16ps %%zmm%d, %%zmm%d, %%zmm%d\n", r[2], r[1], r[0])
		want = append(want, encodeVDPBF16PS(r[0], r[1], r[2])...)
	}
	dir := t.TempDir()
	s, o, bin := filepath.Join(dir, "x.s"), filepath.Join(dir, "x.o"), filepath.Join(dir, "x.bin")
	if err := os.WriteFile(s, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("as", "--64", "-o", o, s).CombinedOutput(); err != nil {
		t.Fatalf("as: %v\n%s", err, out)
	}
	if out, err := exec.Command("objcopy", "-O", "binary", "--only-section=.text", o, bin).CombinedOutput(); err != nil {
		t.Fatalf("objcopy: %v\n%s", err, out)
	}
	got, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("GNU as wrote %d bytes for %d instructions, the generator %d", len(got), len(used), len(want))
	}
	for i, r := range used {
		g, w := got[6*i:6*i+6], want[6*i:6*i+6]
		if !bytes.Equal(g, w) {
			t.Errorf("VDPBF16PS zmm%d, zmm%d, zmm%d: generator % x, GNU as % x", r[0], r[1], r[2], w, g)
		}
	}
}
