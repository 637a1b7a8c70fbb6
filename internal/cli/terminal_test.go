package cli

import (
	"bytes"
	"os"
	"testing"
)

// nonTerminals opens what is not a terminal although it may look like one:
// /dev/null (a character device) and a pipe (its read end).
func nonTerminals(t *testing.T) map[string]*os.File {
	t.Helper()
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devNull.Close(); r.Close(); w.Close() })
	return map[string]*os.File{"/dev/null": devNull, "a pipe": r}
}

// TestIsTerminal: a pseudo-terminal is one; /dev/null, a pipe and a buffer
// are not, so `stage > /dev/null` still runs.
func TestIsTerminal(t *testing.T) {
	for name, f := range nonTerminals(t) {
		if IsTerminal(f) {
			t.Errorf("%s taken for a terminal", name)
		}
	}
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("a buffer taken for a terminal")
	}
	if !IsTerminal(pty(t)) {
		t.Error("a pseudo-terminal is not taken for a terminal")
	}
}
