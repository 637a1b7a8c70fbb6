package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGenerated fails when a committed .s file differs from what its
// generator writes now: edit the generator, then run go generate.
func TestGenerated(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		got, err := os.ReadFile(filepath.Join(root, tg.path))
		if err != nil {
			t.Fatal(err)
		}
		if want := generate(tg); !bytes.Equal(got, want) {
			line := 1 + bytes.Count(want[:commonPrefix(got, want)], []byte("\n"))
			t.Errorf("%s differs from its generator's output from line %d: run go generate ./%s", tg.path, line, filepath.Dir(tg.path))
		}
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
