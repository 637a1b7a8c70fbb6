// Package sharedtest locates the reference data in ../shared for tests.
//
// Tests that need it call Dir: it skips with a message when the folder is
// absent, and fails instead when CLIPLINE_REQUIRE_SHARED=1 (CI sets it), so a
// missing reference can never turn a parity test into a silent pass.
package sharedtest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/clipline/clipline/internal/testreq"
)

// Root is the shared reference folder, found next to the repository root.
func Root() string {
	if d := os.Getenv("CLIPLINE_SHARED"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	// file is <repo>/internal/sharedtest/sharedtest.go
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared")
}

// Dir returns Root()/elem..., skipping or failing the test when it is absent.
func Dir(t testing.TB, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{Root()}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		testreq.Missing(t, "CLIPLINE_REQUIRE_SHARED", "reference data "+p, err.Error(), "set CLIPLINE_SHARED or check out ../shared")
	}
	return p
}
