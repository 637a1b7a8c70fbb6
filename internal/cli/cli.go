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
	"slices"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/clipline/clipline/internal/atomicfile"
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
// help goes to stdout and kong's messages to stderr. After --help or
// --version (kong asking to exit with status 0) it returns a nil context and
// a nil error: the stage has nothing more to do. A request to exit non-zero
// becomes the error "invalid arguments". ctx is nil exactly when the stage
// should stop and return err:
//
//	if ctx, err := cli.Parse(...); ctx == nil {
//		return err
//	}
//
// Every stage gets the same conventions here: --version, a value's default
// shown in its help (placeholders say FILE, DIR, N), a default command's
// flags (tokenize's) shown in the top-level help, and a flag or argument
// tagged stdin:"what it expects; how to give it" refused at once when its
// value is "-" and stdin is a terminal. opts come after the defaults
// (kong.Vars, for one).
func Parse(name, description string, target any, args []string, stdout, stderr io.Writer, opts ...kong.Option) (ctx *kong.Context, err error) {
	parser, err := kong.New(target, append([]kong.Option{
		kong.Name(name),
		kong.Description(description),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exit(code)) }),
		kong.Embed(&versionFlag{}),
		kong.Vars{"version": name + " clipline " + Version()},
		kong.Help(help),
		kong.ValueFormatter(withDefault),
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
	ctx, err = parser.Parse(args)
	if err != nil {
		return nil, err
	}
	if err := checkStdin(ctx, os.Stdin); err != nil {
		return nil, err
	}
	return ctx, nil
}

// versionFlag is the --version every stage has.
type versionFlag struct {
	Version kong.VersionFlag `help:"Print the version (module version and VCS revision) and exit."`
}

// help is kong's help, except that a default command taking flags without
// being named (tokenize's) has its flags listed at the top level, where a
// user who runs it without naming it looks for them.
func help(options kong.HelpOptions, ctx *kong.Context) error {
	app := ctx.Model
	def := app.DefaultCmd
	if ctx.Selected() != nil || def == nil || def.Tag.Default != "withargs" {
		return kong.DefaultHelpPrinter(options, ctx)
	}
	fmt.Fprintf(ctx.Stdout, "Usage: %s [flags]\n", strings.TrimSpace(app.Name+" "+def.FlagSummary(true)))
	for _, c := range app.Leaves(true) {
		if c != def {
			fmt.Fprintf(ctx.Stdout, "       %s %s\n", app.Name, c.Summary())
		}
	}
	options.NoAppSummary = true
	// A copy of the root with the default command's flags: the commands
	// keep their real parent, so their summaries stay their own.
	root := *app.Node
	root.Flags = append(slices.Clone(root.Flags), def.Flags...)
	ctx.Model = &kong.Application{Node: &root, HelpFlag: app.HelpFlag}
	defer func() { ctx.Model = app }()
	return kong.DefaultHelpPrinter(options, ctx)
}

// withDefault adds a value's default to its help, since the placeholder
// (FILE, N) stands where kong would otherwise show it. Defaults that say
// nothing ("", "-", false) and help that already explains its default are
// left alone.
func withDefault(v *kong.Value) string {
	h := kong.DefaultHelpValueFormatter(v)
	if !v.HasDefault || v.IsBool() || v.Default == "" || v.Default == "-" || strings.Contains(h, "default") {
		return h
	}
	return strings.TrimSuffix(h, ".") + " (default: " + v.Default + ")."
}

// WriteOut writes a stage's text result (JSON) to path atomically, or to
// stdout for "" and "-": the --out of stages whose output is not a stream.
func WriteOut(path string, stdout io.Writer, data []byte) error {
	if path == "" || path == "-" {
		_, err := stdout.Write(data)
		return err
	}
	return atomicfile.WriteFile(path, data, 0o644)
}
