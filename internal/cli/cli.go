// Package cli is what every stage binary's main does the same way: kong
// parsing that returns instead of exiting the process (so tests can call a
// stage's run), a failure printed as one line on stderr with exit status 1
// (or the error's own, ExitCoder), and SIGINT/SIGTERM handling.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/alecthomas/kong"
)

// Main runs a stage on the process's arguments, stdout and stderr. This is
// the one place a stage's stdout is chosen: run passes it on to cli.Parse
// (help) and to stream.Options.Stdout (the "-" output), so a test calling
// run with a buffer gets everything. An error is printed as "name: error"
// and the process exits with status 1, or the one the error carries
// (ExitCoder). SIGINT and SIGTERM end the process with status 130 and 143
// after removing unfinished outputs' temporaries, unless the stage catches
// them (CatchInterrupt).
func Main(name string, run func(args []string, stdout, stderr io.Writer) error) {
	handleSignals(name)
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, Message(name, err))
		os.Exit(exitCode(err))
	}
}

// Message is the line Main prints for err: the stage's name first, once,
// even when err already starts with it (internal packages name their stage).
func Message(name string, err error) string {
	return name + ": " + strings.TrimPrefix(err.Error(), name+": ")
}

// exit carries kong's requested exit (after --help) out of Parse.
type exit int

// Parse parses args into target, a kong grammar, for the stage called name;
// help goes to stdout and kong's messages to stderr. After --help (kong
// asking to exit with status 0) it returns a nil context and a nil error: the
// stage has nothing more to do. A request to exit non-zero becomes the error
// "invalid arguments". ctx is nil exactly when the stage should stop and
// return err:
//
//	if ctx, err := cli.Parse(...); ctx == nil {
//		return err
//	}
//
// opts come after the defaults (kong.Vars, for one).
func Parse(name, description string, target any, args []string, stdout, stderr io.Writer, opts ...kong.Option) (ctx *kong.Context, err error) {
	parser, err := kong.New(target, append([]kong.Option{
		kong.Name(name),
		kong.Description(description),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exit(code)) }),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			code, ok := r.(exit)
			if !ok {
				panic(r)
			}
			ctx, err = nil, nil
			if code != 0 {
				err = errors.New("invalid arguments")
			}
		}
	}()
	return parser.Parse(args)
}
