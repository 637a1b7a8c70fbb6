package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/cli/clitest"
	"github.com/clipline/clipline/internal/index"
	"github.com/clipline/clipline/internal/index/indextest"
	"github.com/clipline/clipline/internal/modelid"
	"github.com/clipline/clipline/internal/stream"
)

// TestMain runs the stage itself when a test re-executes this binary
// (clitest.Command).
func TestMain(m *testing.M) {
	if clitest.Mode() != "" {
		cli.Main("index", run)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// handStream writes six hand-made rows (splits train and test
// alternating, two captions each); bad, when >= 0, is a row whose image
// vector is zero.
func handStream(t *testing.T, path string, bad int) {
	t.Helper()
	var rows []indextest.Row
	for i := range 6 {
		v := make([]float32, 4)
		if i != bad {
			v[i%4] = 2
		}
		rows = append(rows, indextest.Row{ID: "img" + string(rune('0'+i)), Path: "images/x.png", Split: []string{"train", "test"}[i%2],
			Captions: []string{"a", "b"}, Image: v, CaptionVecs: [][]float32{{1, 0, 0, 0}, {0, 1, 0, 0}}})
	}
	indextest.Write(t, path, 4, 4, rows, nil)
}

func manifest(t *testing.T, dir string) index.Manifest {
	t.Helper()
	b, err := index.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	return b.Manifest
}

// TestCLI: a real embed stream through the flags: --split, --captions,
// --faiss and --report, the summary on stderr and the provenance; then
// argument errors.
func TestCLI(t *testing.T) {
	tmp := t.TempDir()
	in := indextest.Stream(t, tmp, 20)
	report := filepath.Join(tmp, "report.json")
	os.WriteFile(report, []byte(`{"fine_tuned": {}}`), 0o644)
	out := filepath.Join(tmp, "bundle")
	args := []string{"--in", in, "--out", out, "--split", "test", "--captions", "--faiss", "--report", report}
	var stderr bytes.Buffer
	if err := run(args, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	b, err := index.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m := b.Manifest
	hash, err := modelid.Hash(indextest.BaseModel())
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != index.KindCaptions || m.Count != 20 || m.Model.Hash != hash {
		t.Errorf("manifest %+v; want the 4 test images' 20 captions, model %s", m, hash)
	}
	for r := range b.Len() {
		if it := b.Item(int32(r)); it.Split != "test" || it.Caption == "" {
			t.Errorf("row %d: %+v", r, it)
		}
	}
	if string(b.Report()) != `{"fine_tuned": {}}` {
		t.Errorf("report %s", b.Report())
	}
	if _, err := os.Stat(filepath.Join(out, index.FaissFile)); err != nil {
		t.Error(err)
	}
	if want := "index: 20 captions from 20 rows of " + in; !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("stderr %q, want it to start %q", stderr.String(), want)
	}
	var steps []stream.Step
	if err := json.Unmarshal(m.Provenance, &steps); err != nil || steps[len(steps)-1].Stage != "index" || !slices.Equal(steps[len(steps)-1].Args, args) {
		t.Errorf("provenance %s (%v)", m.Provenance, err)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--in", in}, "missing flags: --out=DIR"},
		{[]string{"--in", in, "--out", "-"}, "a bundle cannot go to stdout"},
		{[]string{"--in", filepath.Join(tmp, "absent.arrow"), "--out", out}, "absent.arrow"},
		{[]string{"--in", in, "--out", out, "--report", filepath.Join(tmp, "absent.json")}, "absent.json"},
		{[]string{"--in", in, "--out", tmp}, "is a directory that is not an index bundle"},
	} {
		if err := run(c.args, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	var help bytes.Buffer
	if err := run([]string{"--help"}, &help, io.Discard); err != nil || !strings.Contains(help.String(), "--captions") {
		t.Errorf("--help: %v\n%s", err, help.String())
	}
}

// TestStdinAndFailure: the stage reads stdin; a bad row ends it with one
// line naming the input, row and image_id, status 1 and nothing written.
func TestStdinAndFailure(t *testing.T) {
	tmp := t.TempDir()
	good, bad := filepath.Join(tmp, "good.arrow"), filepath.Join(tmp, "bad.arrow")
	handStream(t, good, -1)
	handStream(t, bad, 3)
	outDir := filepath.Join(tmp, "out")
	os.MkdirAll(outDir, 0o755)
	stage := func(in string) (int, string) {
		f, err := os.Open(in)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd := clitest.Command(t, "index", "--out", filepath.Join(outDir, "b"))
		var stderr bytes.Buffer
		cmd.Stdin, cmd.Stderr = f, &stderr
		return clitest.ExitStatus(t, cmd, cmd.Run()), stderr.String()
	}
	if code, errOut := stage(good); code != 0 || !strings.HasPrefix(errOut, "index: 6 images from 6 rows of stdin") {
		t.Errorf("index < good.arrow: status %d, %q", code, errOut)
	}
	if m := manifest(t, filepath.Join(outDir, "b")); m.Count != 6 {
		t.Errorf("%d rows indexed from stdin, want 6", m.Count)
	}
	os.RemoveAll(filepath.Join(outDir, "b"))
	code, errOut := stage(bad)
	if want := "index: stdin: row 3 (image_id img3): image_embedding is all zeros, which has no direction to search by\n"; code != 1 || errOut != want {
		t.Errorf("index < bad.arrow: status %d, %q; want 1 and %q", code, errOut, want)
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
		t.Errorf("a failed index left %v", ents)
	}
}

// TestInterrupted: a signal while index reads its input leaves neither
// the bundle nor its temporary directory, and the status is 128 + the
// signal.
func TestInterrupted(t *testing.T) {
	in := filepath.Join(t.TempDir(), "in.arrow")
	handStream(t, in, -1)
	raw, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	clitest.Interrupted(t, "index", raw, func(outDir string) []string {
		return []string{"--out", filepath.Join(outDir, "b")}
	})
}
