package stages

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/stream"
)

var update = flag.Bool("update", false, "rewrite docs/cli.md's generated table")

// root is the module's root, relative to this package.
const root = "../.."

// stageNames are the binaries; commands are what has its own flags.
var (
	stageNames = []string{"prepare", "tokenize", "decode", "train", "embed", "rank", "report", "index", "serve"}
	commands   = [][]string{{"prepare", "synthetic"}, {"prepare", "jsonl"}, {"prepare", "flickr30k"}, {"prepare", "webdataset"}, {"prepare", "parquet"},
		{"tokenize"}, {"tokenize", "learn"}, {"decode"}, {"train"}, {"embed"}, {"rank"}, {"report"}, {"index"}, {"serve"}}
)

var binDir string // the built stages, shared by the tests

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "clipline-stages-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, s := range stageNames {
		args = append(args, "./"+s)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// stage runs a built stage, bounded in time, with stdin; it returns stdout,
// stderr and the exit status.
func stage(t *testing.T, stdin *os.File, name string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, name), args...)
	cmd.Dir = root
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: still running after 30s (waiting on stdin?)", name, args)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return stdout.String(), stderr.String(), code
}

// version is what --version of the built stage name should print after its
// name: cli.VersionOf the binary's own build information.
func version(t *testing.T, name string) string {
	t.Helper()
	bi, err := buildinfo.ReadFile(filepath.Join(binDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return cli.VersionOf(bi)
}

func TestVersion(t *testing.T) {
	for _, c := range commands {
		out, errOut, code := stage(t, nil, c[0], append(slices.Clone(c[1:]), "--version")...)
		if want := c[0] + " clipline " + version(t, c[0]) + "\n"; out != want || errOut != "" || code != 0 {
			t.Errorf("%v --version: %q, stderr %q, status %d; want %q", c, out, errOut, code, want)
		}
	}
}

// TestProvenanceVersion: the stream a stage writes records the version its
// --version prints.
func TestProvenanceVersion(t *testing.T) {
	out := filepath.Join(t.TempDir(), "p.arrow")
	if _, errOut, code := stage(t, nil, "prepare", "synthetic", "--images", "2", "--render-dir", t.TempDir(), "--out", out); code != 0 {
		t.Fatalf("prepare: %s", errOut)
	}
	r, err := stream.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	steps, err := stream.Provenance(r.Schema())
	if err != nil || len(steps) != 1 || steps[0].Version != version(t, "prepare") {
		t.Errorf("provenance %+v (%v), want version %q", steps, err, version(t, "prepare"))
	}
}

// TestTerminalStdin: a stage asked to read a terminal stdin stops at once
// with one line saying what it expected and how to give it; /dev/null and
// a pipe are read as usual.
func TestTerminalStdin(t *testing.T) {
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer pty.Close()
	model := "testdata/base-model"
	for _, c := range []struct {
		args []string
		want string // after "STAGE: stdin is a terminal: expected "
	}{
		{[]string{"rank"}, "an Arrow stream of embedded rows; pass --in FILE or pipe one: embed ... | rank"},
		{[]string{"tokenize", "--model", model}, "an Arrow stream of rows with captions; pass --in FILE or pipe one: prepare ... | tokenize --model DIR"},
		{[]string{"tokenize", "learn", "--captions-from", "-", "--vocab-size", "600", "--out", "x"}, "an Arrow stream of rows with captions; pass --captions-from FILE"},
		{[]string{"decode", "--size", "8"}, "an Arrow stream of rows with image_bytes or image_path; pass --in FILE"},
		{[]string{"embed", "--model", model}, "an Arrow stream of rows with pixels (or image_bytes, image_path) and/or caption_tokens; pass --in FILE"},
		{[]string{"train", "--model", model}, "an Arrow stream of tokenized rows"},
		{[]string{"prepare", "jsonl", "-"}, "JSONL lines; pass a FILE instead of -"},
		{[]string{"index", "--out", "x"}, "an Arrow stream of embedded rows; pass --in FILE or pipe one: embed ... | index --out DIR"},
	} {
		out, errOut, code := stage(t, pty, c.args[0], c.args[1:]...)
		prefix := c.args[0] + ": stdin is a terminal: expected " + c.want
		if code != 1 || out != "" || !strings.HasPrefix(errOut, prefix) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v on a terminal: status %d, stdout %q, stderr %q; want one line starting %q", c.args, code, out, errOut, prefix)
		}
	}

	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	if _, errOut, code := stage(t, devNull, "rank"); code != 1 || !strings.Contains(errOut, "rank: stdin: empty input") {
		t.Errorf("rank < /dev/null: status %d, %q; want the empty-input error", code, errOut)
	}

	prep := filepath.Join(t.TempDir(), "p.arrow")
	if _, errOut, code := stage(t, nil, "prepare", "synthetic", "--images", "3", "--render-dir", t.TempDir(), "--out", prep); code != 0 {
		t.Fatalf("prepare: %s", errOut)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(prep)
	if err != nil {
		t.Fatal(err)
	}
	go func() { w.Write(data); w.Close() }()
	defer r.Close()
	if _, errOut, code := stage(t, r, "tokenize", "--model", model, "--out", filepath.Join(t.TempDir(), "t.arrow")); code != 0 {
		t.Errorf("prepare | tokenize: status %d, %s", code, errOut)
	}
}

// A flagDoc is one flag as --help shows it.
type flagDoc struct{ name, value string } // value: the placeholder, "" for a switch

// flagLine is a flag's first line in kong's help: two spaces and -x, or six
// spaces, then --name[=VALUE]; deeper lines continue a description.
var flagLine = regexp.MustCompile(`^(?:  -\w, |      )--([a-z0-9-]+)(?:=(\S+))?(?:\s|$)`)

// flags parses the flags of a command's --help, without --help and --version.
func flags(t *testing.T, c []string) []flagDoc {
	t.Helper()
	out, errOut, code := stage(t, nil, c[0], append(slices.Clone(c[1:]), "--help")...)
	if code != 0 {
		t.Fatalf("%v --help: status %d, %s", c, code, errOut)
	}
	var fs []flagDoc
	for _, line := range strings.Split(out, "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil && m[1] != "help" && m[1] != "version" {
			fs = append(fs, flagDoc{m[1], m[2]})
		}
	}
	if len(fs) == 0 {
		t.Fatalf("%v --help lists no flags:\n%s", c, out)
	}
	return fs
}

// placeholders are the values a flag may say it takes.
var placeholders = []string{"FILE", "DIR", "N", "F", "NAME", "URL", "DIR|ID", "KEY=VALUE", "HOST:PORT", "DURATION", "TOKEN", "K/N|env"}

// synonyms are names the stages do not use for what they already name.
var synonyms = map[string]string{"input": "in", "output": "out", "image-dir": "image-root (resolve) or render-dir (write)",
	"model-dir": "model", "model-path": "model", "threads": "workers", "jobs": "workers", "num-workers": "workers",
	"splits": "split", "data": "in", "dev": "device", "batch": "batch-size"}

// TestFlagNames: one name for one thing across the stages, and placeholders
// that say what a value is.
func TestFlagNames(t *testing.T) {
	values := map[string]map[string][]string{} // flag -> placeholder -> commands
	for _, c := range commands {
		for _, f := range flags(t, c) {
			cmd := strings.Join(c, " ")
			if f.value != "" && !slices.Contains(placeholders, f.value) {
				t.Errorf("%s --%s=%s: placeholder is none of %v", cmd, f.name, f.value, placeholders)
			}
			if s, ok := synonyms[f.name]; ok {
				t.Errorf("%s --%s: the stages call this --%s", cmd, f.name, s)
			}
			if values[f.name] == nil {
				values[f.name] = map[string][]string{}
			}
			values[f.name][f.value] = append(values[f.name][f.value], cmd)
		}
	}
	// The values that the same flag may take in different commands.
	allowed := map[string][]string{"out": {"FILE", "DIR"}, "model": {"DIR", "DIR|ID"}}
	for name, byValue := range values {
		if len(byValue) < 2 {
			continue
		}
		for v, cmds := range byValue {
			if !slices.Contains(allowed[name], v) {
				t.Errorf("--%s takes different values: %v (%s in %v)", name, byValue, v, cmds)
			}
		}
	}
	for _, name := range []string{"in", "out", "model", "image-root", "workers", "split"} {
		if len(values[name]) == 0 {
			t.Errorf("no stage has --%s", name)
		}
	}
}

const (
	docsFile  = "docs/cli.md"
	beginMark = "<!-- flags: generated by `go test ./internal/stages -run TestDocsTable -update` -->\n"
	endMark   = "<!-- end of generated flags -->\n"
)

// table is docs/cli.md's generated part: every command's flags, then the
// flags that several commands share.
func table(t *testing.T) string {
	var b strings.Builder
	b.WriteString("| command | flags (besides `--help`, `--version`) |\n| --- | --- |\n")
	shared := map[string][]string{}
	var order []string
	for _, c := range commands {
		cmd := strings.Join(c, " ")
		var cells []string
		for _, f := range flags(t, c) {
			cell := "--" + f.name
			if f.value != "" {
				cell += " " + f.value
			}
			// GitHub's tables split cells at | even in code spans.
			cell = strings.ReplaceAll(cell, "|", `\|`)
			cells = append(cells, "`"+cell+"`")
			if shared[cell] == nil {
				order = append(order, cell)
			}
			shared[cell] = append(shared[cell], cmd)
		}
		fmt.Fprintf(&b, "| `%s` | %s |\n", cmd, strings.Join(cells, " "))
	}
	b.WriteString("\n| shared flag | commands |\n| --- | --- |\n")
	for _, cell := range order {
		if cmds := shared[cell]; len(cmds) > 1 {
			fmt.Fprintf(&b, "| `%s` | %s |\n", cell, strings.Join(cmds, ", "))
		}
	}
	return b.String()
}

// TestDocsTable: docs/cli.md lists exactly the flags --help shows.
func TestDocsTable(t *testing.T) {
	path := filepath.Join(root, docsFile)
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i, j := strings.Index(s, beginMark), strings.Index(s, endMark)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers %q and %q", docsFile, beginMark, endMark)
	}
	want := table(t)
	got := s[i+len(beginMark) : j]
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(s[:i+len(beginMark)]+want+s[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s's table is stale; run go test ./internal/stages -run TestDocsTable -update\nwant:\n%s", docsFile, want)
}

// TestMakeHelp: `make -f pipeline.mk help` names every target and variable
// pipeline.mk declares for users.
func TestMakeHelp(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make here")
	}
	cmd := exec.Command("make", "-s", "-f", "pipeline.mk", "help")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make help: %v", err)
	}
	mk, err := os.ReadFile(filepath.Join(root, "pipeline.mk"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(mk), "\n") {
		if rest, ok := strings.CutPrefix(line, ".PHONY:"); ok {
			names = append(names, strings.Fields(rest)...)
		}
		// Variables a user may set: the ?= ones.
		if name, _, ok := strings.Cut(line, "?="); ok && !strings.ContainsAny(strings.TrimSpace(name), " \t#") {
			names = append(names, strings.TrimSpace(name))
		}
	}
	for _, name := range names {
		if name != "FORCE" && !regexp.MustCompile(`(?m)^\s*`+regexp.QuoteMeta(name)+`\s`).Match(out) {
			t.Errorf("make help does not describe %s:\n%s", name, out)
		}
	}
}
