package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

type grammar struct {
	Size  int    `default:"3" help:"Side in pixels (${unit})."`
	Name  string `required:"" help:"A name."`
	Abort abortFlag
}

// abortFlag asks kong to exit non-zero, as a hook may.
type abortFlag bool

func (abortFlag) BeforeApply(k *kong.Kong) error {
	k.Exit(3)
	return nil
}

func parse(t *testing.T, args ...string) (*grammar, *kong.Context, string, error) {
	t.Helper()
	var g grammar
	var stdout, stderr bytes.Buffer
	ctx, err := Parse("stage", "Does a thing.", &g, args, &stdout, &stderr, kong.Vars{"unit": "px"})
	if stderr.Len() != 0 {
		t.Errorf("%v: stderr %q", args, stderr.String())
	}
	return &g, ctx, stdout.String(), err
}

func TestParse(t *testing.T) {
	g, ctx, out, err := parse(t, "--name", "x", "--size", "7")
	if err != nil || ctx == nil || g.Name != "x" || g.Size != 7 || out != "" {
		t.Fatalf("flags: ctx %v, err %v, %+v, stdout %q", ctx, err, g, out)
	}

	// --help: the help on stdout, and nothing for the stage to do, even
	// with a required flag missing.
	_, ctx, out, err = parse(t, "--help")
	if ctx != nil || err != nil {
		t.Fatalf("--help: ctx %v, err %v", ctx, err)
	}
	for _, want := range []string{"Usage: stage", "Does a thing.", "--size=3", "(px)"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}

	// Errors come back; usage is not printed.
	for _, args := range [][]string{{"--name", "x", "--bogus"}, {"--size", "2"}, {"--name", "x", "--size", "big"}} {
		_, ctx, out, err := parse(t, args...)
		if ctx != nil || err == nil || out != "" {
			t.Errorf("%v: ctx %v, err %v, stdout %q", args, ctx, err, out)
		}
	}

	// A non-zero exit requested while parsing.
	if _, ctx, _, err := parse(t, "--name", "x", "--abort"); ctx != nil || err == nil || err.Error() != "invalid arguments" {
		t.Errorf("--abort: ctx %v, err %v", ctx, err)
	}
}

func TestParseRepanics(t *testing.T) {
	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("recovered %v, want the hook's own panic", r)
		}
	}()
	var g struct {
		Boom panicFlag
	}
	Parse("stage", "", &g, []string{"--boom"}, &bytes.Buffer{}, &bytes.Buffer{})
	t.Error("no panic")
}

type panicFlag bool

func (panicFlag) BeforeApply() error { panic("boom") }

func TestMessage(t *testing.T) {
	for _, c := range []struct{ err, want string }{
		{"open x: no such file", "train: open x: no such file"},
		{"train: resume: bad", "train: resume: bad"},
		{"trainer: bad", "train: trainer: bad"},
	} {
		if got := Message("train", errors.New(c.err)); got != c.want {
			t.Errorf("Message(%q) = %q, want %q", c.err, got, c.want)
		}
	}
}
