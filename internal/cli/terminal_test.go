package cli

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// TestIsTerminal: a pseudo-terminal is one; /dev/null (a character device),
// a pipe and a buffer are not, so `stage > /dev/null` still runs.
func TestIsTerminal(t *testing.T) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for name, f := range map[string]io.Writer{"/dev/null": devNull, "pipe": w, "buffer": &bytes.Buffer{}} {
		if IsTerminal(f) {
			t.Errorf("%s taken for a terminal", name)
		}
	}
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer pty.Close()
	if !IsTerminal(pty) {
		t.Error("a pseudo-terminal is not taken for a terminal")
	}
}
