package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/cli/clitest"
)

// TestMain runs the stage itself when the interruption test re-executes
// this binary (clitest.Command).
func TestMain(m *testing.M) {
	if clitest.Mode() != "" {
		cli.Main("tokenize", run)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A signal while tokenize writes --out FILE leaves neither FILE nor its
// temporary, and the exit status is 128 + the signal.
func TestInterruptedOut(t *testing.T) {
	model := learnedModel(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.arrow")
	writeStream(t, in, testCaptions)
	raw, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	clitest.Interrupted(t, "tokenize", raw, func(outDir string) []string {
		return []string{"--model", model, "--out", filepath.Join(outDir, "tok.arrow")}
	})
}
