package cli

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// withStdin runs f with os.Stdin replaced by in.
func withStdin(t *testing.T, in *os.File, f func()) {
	t.Helper()
	old := os.Stdin
	os.Stdin = in
	defer func() { os.Stdin = old }()
	f()
}

// Pty opens a pseudo-terminal's master side (a terminal as far as isatty is
// concerned), or skips the test where there is none.
func pty(t *testing.T) *os.File {
	t.Helper()
	f, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

type readers struct {
	In   string   `default:"-" stdin:"rows; pass --in FILE"`
	From []string `stdin:"captions; pass --from FILE"`
	Val  string   // reads stdin too, but is not tagged: left to the stage
	Sub  struct {
		File string `arg:"" stdin:"JSONL lines; pass FILE"`
	} `cmd:"" default:"withargs"`
}

// TestTerminalStdin: with stdin a terminal, a tagged flag or argument that
// reads it ("-") is refused with what it expected; other values, untagged
// flags and a stdin that is a pipe or /dev/null are not.
func TestTerminalStdin(t *testing.T) {
	parse := func(args ...string) error {
		var g readers
		var out bytes.Buffer
		ctx, err := Parse("stage", "", &g, args, &out, &out)
		if ctx == nil && err == nil && args[0] != "--help" {
			t.Fatalf("%v: stopped without an error", args)
		}
		return err
	}
	term := pty(t)
	withStdin(t, term, func() {
		for _, c := range []struct {
			args []string
			want string // "" for no error
		}{
			{[]string{"x.jsonl"}, "stdin is a terminal: expected rows; pass --in FILE"},
			{[]string{"--in", "a", "-"}, "stdin is a terminal: expected JSONL lines; pass FILE"},
			{[]string{"--in", "a", "--from", "b", "--from", "-", "x"}, "stdin is a terminal: expected captions; pass --from FILE"},
			{[]string{"--in", "a", "--from", "b", "--val", "-", "x"}, ""},
			{[]string{"--in", "a", "x"}, ""},
			{[]string{"--help"}, ""},
		} {
			err := parse(c.args...)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("%v: %v", c.args, err)
			case c.want != "" && (err == nil || err.Error() != c.want || !errors.Is(err, ErrTerminalStdin)):
				t.Errorf("%v: %v, want %q", c.args, err, c.want)
			}
		}
	})
	for name, f := range nonTerminals(t) {
		withStdin(t, f, func() {
			if err := parse("-"); err != nil {
				t.Errorf("stdin %s: %v", name, err)
			}
		})
	}
}
