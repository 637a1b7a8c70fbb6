// Package jstest runs the official JavaScript Arrow implementation over a
// file, for tests that check what clipline writes with a reader
// independent of arrow-go (testdata/js/read.mjs) and what it reads from an
// independent writer (testdata/js/write.mjs), with the npm packages
// that .ci/run installs (npm ci --prefix testdata/js).
package jstest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/testreq"
)

// Dir is testdata/js at the repository root.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	// file is <repo>/internal/stream/jstest/jstest.go
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "js")
}

// Require skips the test when node or the npm packages are missing, or
// fails it instead with CLIPLINE_REQUIRE_NODE=1 (as CI sets).
func Require(t testing.TB) {
	t.Helper()
	skip := func(why string) {
		t.Helper()
		testreq.Missing(t, "CLIPLINE_REQUIRE_NODE", "the JavaScript interop test", why, "install with: npm ci --prefix testdata/js")
	}
	if _, err := exec.LookPath("node"); err != nil {
		skip("node is not installed")
	}
	if _, err := os.Stat(filepath.Join(Dir(), "node_modules", "apache-arrow", "package.json")); err != nil {
		skip("the npm package apache-arrow is not installed in testdata/js/node_modules")
	}
}

// Read is read.mjs's JSON for the Arrow IPC stream or file at path (args:
// "zstd" registers a zstd codec first). Require must have passed.
func Read(t testing.TB, path string, args ...string) []byte {
	t.Helper()
	return Run(t, "read.mjs", append([]string{path}, args...)...)
}

// Run runs a script of testdata/js with args and returns its stdout; t fails
// when it fails. Require must have passed.
func Run(t testing.TB, script string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{filepath.Join(Dir(), script)}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s %v: %v\n%s", script, args, err, stderr.String())
	}
	return out
}
