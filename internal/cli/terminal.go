package cli

import (
	"io"
	"os"

	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal: progress redraws in place
// there, and stream.Create refuses to write binary streams to it. A
// character device that is not a terminal (/dev/null) is not one.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
