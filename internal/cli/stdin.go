package cli

import (
	"errors"
	"fmt"
	"os"
	"reflect"

	"github.com/alecthomas/kong"
)

// ErrTerminalStdin starts the error of a stage asked to read stdin while
// stdin is a terminal: it would wait, silently, for a binary stream nobody
// is going to type.
var ErrTerminalStdin = errors.New("stdin is a terminal")

// TerminalStdin is the error for a terminal stdin: what the stage expected
// there and how to give it, e.g. "an Arrow stream of embedded rows; pass
// --in FILE or pipe one: embed ... | rank".
func TerminalStdin(expected string) error {
	return fmt.Errorf("%w: expected %s", ErrTerminalStdin, expected)
}

// checkStdin refuses, before the stage does any work, a flag or argument
// tagged stdin:"what it expects; how to give it" whose value is "-" (one of
// its values, for a repeatable flag) when stdin is a terminal. A pipe, a file
// and /dev/null are read as usual.
func checkStdin(ctx *kong.Context, stdin *os.File) error {
	if !IsTerminal(stdin) {
		return nil
	}
	node := ctx.Selected()
	if node == nil {
		node = ctx.Model.Node
	}
	values := node.Positional
	for _, f := range ctx.Flags() {
		values = append(values, f.Value)
	}
	for _, v := range values {
		if expected := v.Tag.Get("stdin"); expected != "" && readsStdin(v.Target) {
			return TerminalStdin(expected)
		}
	}
	return nil
}

// readsStdin reports whether a flag's value names stdin ("-").
func readsStdin(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		return v.String() == "-"
	case reflect.Slice:
		for i := range v.Len() {
			if readsStdin(v.Index(i)) {
				return true
			}
		}
	}
	return false
}
