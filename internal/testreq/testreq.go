// Package testreq is the one rule for tests that need a tool or data this
// machine may lack: they skip with a message saying what is missing and how
// to get it, and fail instead where CI requires it through a
// CLIPLINE_REQUIRE_* variable set to 1 (.ci/run sets them all), so a
// missing install in CI cannot turn into silently skipped checks.
package testreq

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// Missing ends t because what (the check, e.g. "the FAISS round trip")
// cannot run: why says what is absent, hint how to install it. It fails t
// when $env is 1, else skips it.
func Missing(t testing.TB, env, what, why, hint string) {
	t.Helper()
	if os.Getenv(env) == "1" {
		t.Fatalf("%s is required (%s=1) but %s (%s)", what, env, why, hint)
	}
	t.Skipf("skipping %s: %s (%s)", what, why, hint)
}

// DebianPython is the Python that Debian's python3-* packages install into
// (the python3 first on PATH may be another one, without them).
const DebianPython = "/usr/bin/python3"

// Python returns DebianPython when it can import module (from the Debian
// package pkg), else ends t through Missing.
func Python(t testing.TB, env, what, module, pkg string) string {
	t.Helper()
	hint := "apt-get install " + pkg
	if _, err := os.Stat(DebianPython); err != nil {
		Missing(t, env, what, DebianPython+" is absent", hint)
	}
	if out, err := exec.Command(DebianPython, "-c", "import "+module).CombinedOutput(); err != nil {
		Missing(t, env, what, pkg+" is not installed: "+string(bytes.TrimSpace(out)), hint)
	}
	return DebianPython
}
