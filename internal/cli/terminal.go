package cli

import (
	"io"
	"os"
)

// IsTerminal reports whether w is a terminal (a character device): progress
// redraws in place there, and a stage refuses to write binary streams to it.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
