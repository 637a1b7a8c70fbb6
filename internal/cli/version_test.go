package cli

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionOf(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, c := range []struct {
		bi   *debug.BuildInfo
		want string
	}{
		{nil, "(devel)"},
		{&debug.BuildInfo{}, "(devel)"},
		{&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "(devel)"},
		{&debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{&debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207052715-33e419e3b4fa"}, Settings: vcs("33e419e3b4fa9d39eb2bae3ccc0c590f8e08d532", "false")},
			"v0.0.0-20261207052715-33e419e3b4fa (rev 33e419e)"},
		{&debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207052715-33e419e3b4fa+dirty"}, Settings: vcs("33e419e3b4fa9d39eb2bae3ccc0c590f8e08d532", "true")},
			"v0.0.0-20261207052715-33e419e3b4fa+dirty (rev 33e419e, modified)"},
		{&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("abc", "true")}, "(devel) (rev abc, modified)"},
	} {
		if got := VersionOf(c.bi); got != c.want {
			t.Errorf("VersionOf(%+v) = %q, want %q", c.bi, got, c.want)
		}
	}
}

// TestVersionFlag: every grammar gets --version, which prints the stage's
// name and Version and stops the stage, even with required flags missing.
func TestVersionFlag(t *testing.T) {
	_, ctx, out, err := parse(t, "--version")
	if ctx != nil || err != nil {
		t.Fatalf("--version: ctx %v, err %v", ctx, err)
	}
	if want := "stage clipline " + Version() + "\n"; out != want {
		t.Errorf("--version printed %q, want %q", out, want)
	}
	if _, _, out, _ := parse(t, "--help"); !strings.Contains(out, "--version") {
		t.Errorf("--help does not list --version:\n%s", out)
	}
}

// TestDefaultCommandHelp: the top-level help of a grammar with a default
// command lists that command's flags and the other commands, not the
// default command itself.
func TestDefaultCommandHelp(t *testing.T) {
	var g struct {
		Run struct {
			Model string `required:"" placeholder:"DIR" help:"The model."`
			Count int    `default:"4" placeholder:"N" help:"How many."`
		} `cmd:"" default:"withargs" hidden:"" help:"Do the thing."`
		Learn struct {
			Out string `required:"" placeholder:"DIR" help:"Where."`
		} `cmd:"" help:"Learn something."`
	}
	var stdout, stderr bytes.Buffer
	ctx, err := Parse("tok", "Tokenizes.", &g, []string{"--help"}, &stdout, &stderr)
	if ctx != nil || err != nil {
		t.Fatalf("--help: ctx %v, err %v", ctx, err)
	}
	out := stdout.String()
	for _, want := range []string{"Usage: tok --model=DIR [flags]\n       tok learn --out=DIR [flags]\n", "Tokenizes.",
		"--model=DIR", "The model.", "--count=N", "How many (default: 4).", "learn --out=DIR", "Learn something."} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Do the thing") || strings.Contains(out, "run ") {
		t.Errorf("help lists the default command:\n%s", out)
	}
	// The default command still runs unnamed, and by name.
	for _, args := range [][]string{{"--model", "m"}, {"run", "--model", "m"}} {
		if ctx, err := Parse("tok", "", &g, args, &stdout, &stderr); ctx == nil || err != nil || g.Run.Model != "m" || g.Run.Count != 4 {
			t.Errorf("%v: ctx %v, err %v, %+v", args, ctx, err, g.Run)
		}
	}
}
