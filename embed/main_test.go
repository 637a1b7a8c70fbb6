package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/embed/embedtest"
	"github.com/clipline/clipline/internal/stream"
)

// TestCLI runs the command in-process: a file in, a zstd file out with the
// flags applied; argument errors.
func TestCLI(t *testing.T) {
	ref := embedtest.LoadReference(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.arrow"), filepath.Join(dir, "out.arrow")
	px := ref.Side * ref.Side * 3
	s := embedtest.Stream{Side: ref.Side, Context: ref.Context}
	for i := range ref.N {
		s.Rows = append(s.Rows, embedtest.Row{ID: fmt.Sprint(i), Pixels: ref.Pixels[i*px : (i+1)*px],
			Captions: []string{"c"}, Tokens: [][]int32{ref.IDs[i*ref.Context : (i+1)*ref.Context]}})
	}
	s.Write(t, in)
	model := embedtest.GoldenModel(t)
	var stderr bytes.Buffer
	args := []string{"--model", model, "--in", in, "--out", out, "--batch-size", "3", "--dim", "16", "--compress", "zstd"}
	if err := run(args, io.Discard, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "embed: 4 rows, 4 images") {
		t.Errorf("stderr %q", stderr.String())
	}
	o := embedtest.Read(t, out)
	if d := embedtest.MaxAbsDiff(t, o.Images.Values, embedtest.Normalized(ref.ImageEmbeds, ref.Dim, 16)); !(d <= 1e-4) {
		t.Errorf("--dim 16 image embeddings off by %g", d)
	}
	if d := embedtest.MaxAbsDiff(t, o.Caps.Values, embedtest.Normalized(ref.TextEmbeds, ref.Dim, 16)); !(d <= 1e-4) {
		t.Errorf("--dim 16 caption embeddings off by %g", d)
	}
	prov, _ := stream.Provenance(o.Schema)
	if last := prov[len(prov)-1]; last.Stage != "embed" || strings.Join(last.Args, " ") != strings.Join(args, " ") {
		t.Errorf("provenance %+v", last)
	}

	// The same rows as a stream (read as one, not mapped) embed the same.
	streamIn, streamOut := filepath.Join(dir, "in.arrows"), filepath.Join(dir, "out-stream.arrow")
	s.Write(t, streamIn)
	if err := run([]string{"--model", model, "--in", streamIn, "--out", streamOut, "--batch-size", "3", "--dim", "16"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if so := embedtest.Read(t, streamOut); !reflect.DeepEqual(so.Images, o.Images) || !reflect.DeepEqual(so.Caps, o.Caps) {
		t.Error("a mapped IPC file and the same rows as a stream embed differently")
	}

	if err := run([]string{"--model", model, "--in", in, "--out", out, "--no-normalize"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if d := embedtest.MaxAbsDiff(t, embedtest.Read(t, out).Images.Values, ref.ImageEmbeds); !(d <= 1e-4) {
		t.Errorf("--no-normalize image embeddings off by %g", d)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", model, "--in", in, "--batch-size", "0"}, "--batch-size 0 must be positive"},
		{[]string{"--model", model, "--in", in, "--dim", "64"}, "--dim 64: the model's embeddings have 32 dimensions"},
		{[]string{"--model", model, "--in", filepath.Join(dir, "absent.arrow")}, "absent.arrow"},
		{[]string{"--model", filepath.Join(dir, "no/such/dir!"), "--in", in}, "neither an existing directory nor a Hugging Face model id"},
		{[]string{"--model", model, "--in", in, "--device", "tpu"}, "--device tpu"},
		{[]string{"--in", in}, "--model"},
	} {
		err := run(c.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
	var help bytes.Buffer
	if err := run([]string{"--help"}, &help, io.Discard); err != nil || !strings.Contains(help.String(), "--no-normalize") {
		t.Errorf("--help: %v\n%s", err, help.String())
	}
}

// buildStages builds the stage binaries into a temporary directory.
func buildStages(t *testing.T, stages ...string) string {
	t.Helper()
	bin := t.TempDir()
	// No symbol tables or DWARF: linking five binaries is most of this
	// test's time.
	args := []string{"build", "-ldflags=-s -w", "-o", bin + string(filepath.Separator)}
	for _, s := range stages {
		args = append(args, "./"+s)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// pipe runs commands connected stdout to stdin, like a shell pipeline with
// pipefail, and returns the last one's stdout and everyone's stderr.
func pipe(t *testing.T, cmds ...*exec.Cmd) (string, string, error) {
	t.Helper()
	var stdout bytes.Buffer
	stderrs := make([]bytes.Buffer, len(cmds))
	// os.Pipe rather than StdoutPipe: the parent must close its copies of
	// both ends once the children hold them, or a writer whose reader died
	// would block forever instead of getting EPIPE.
	var parentEnds []*os.File
	for i, c := range cmds {
		c.Stderr = &stderrs[i]
		if i+1 < len(cmds) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			c.Stdout, cmds[i+1].Stdin = w, r
			parentEnds = append(parentEnds, r, w)
		} else {
			c.Stdout = &stdout
		}
	}
	for _, c := range cmds {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range parentEnds {
		f.Close()
	}
	var first error
	for _, c := range cmds {
		if err := c.Wait(); err != nil && first == nil {
			first = fmt.Errorf("%s: %w", filepath.Base(c.Path), err)
		}
	}
	var stderr strings.Builder
	for i := range stderrs {
		stderr.Write(stderrs[i].Bytes())
	}
	return stdout.String(), stderr.String(), first
}

// TestPipeline runs the built stages end to end on 30 synthetic images:
// prepare synthetic, tokenize learn (a vocabulary for a tiny random model),
// then tokenize | decode | embed | rank through pipes. A random model ranks at
// chance: the check is that the stages compose and rank's JSON is sound.
// Then an image size mismatch fails in embed with one clear line.
func TestPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the stage binaries")
	}
	bin := buildStages(t, "prepare", "tokenize", "decode", "embed", "rank")
	run := func(name string, args ...string) *exec.Cmd { return exec.Command(filepath.Join(bin, name), args...) }
	dir := t.TempDir()
	prep := filepath.Join(dir, "prep.arrow")
	model := filepath.Join(dir, "model")
	if out, err := run("prepare", "synthetic", "--domain", "scenes", "--images", "30", "--seed", "3",
		"--render-dir", filepath.Join(dir, "images"), "--out", prep).CombinedOutput(); err != nil {
		t.Fatalf("prepare: %v\n%s", err, out)
	}
	if out, err := run("tokenize", "learn", "--captions-from", prep, "--vocab-size", "600", "--out", model).CombinedOutput(); err != nil {
		t.Fatalf("tokenize learn: %v\n%s", err, out)
	}
	embedtest.AddTinyModel(t, model)

	embedded := filepath.Join(dir, "emb.arrow")
	tok := run("tokenize", "--model", model, "--in", prep)
	dec := run("decode", "--model", model)
	emb := run("embed", "--model", model, "--batch-size", "16", "--out", embedded)
	if _, stderr, err := pipe(t, tok, dec, emb); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	stdout, stderr, err := pipe(t, run("rank", "--in", embedded))
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var res struct {
		T2I, I2T        map[string]float64
		RSum            float64
		Images, Queries int
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("rank's JSON: %v\n%s", err, stdout)
	}
	if res.Images != 30 || res.Queries == 0 || res.Queries > 150 {
		t.Errorf("%d images, %d queries; want 30 and up to 150", res.Images, res.Queries)
	}
	var sum float64
	for dirName, m := range map[string]map[string]float64{"t2i": res.T2I, "i2t": res.I2T} {
		for _, k := range []string{"r1", "r5", "r10", "mrr", "ndcg10"} {
			v, ok := m[k]
			if !ok || !(v >= 0 && v <= 1) {
				t.Errorf("%s.%s = %v (present %v), want in [0, 1]", dirName, k, v, ok)
			}
			if k[0] == 'r' && k != "rsum" {
				sum += v
			}
		}
		if !(m["r1"] <= m["r5"] && m["r5"] <= m["r10"]) {
			t.Errorf("%s recalls not increasing: %v", dirName, m)
		}
	}
	if d := sum - res.RSum; !(d <= 1e-9 && d >= -1e-9) {
		t.Errorf("rsum %g, recalls sum to %g", res.RSum, sum)
	}
	t.Logf("random tiny model on 30 synthetic images: %s", strings.TrimSpace(stdout))

	// One pipe from tokens to metrics, embedding only the test split.
	stdout, stderr, err = pipe(t, run("tokenize", "--model", model, "--in", prep), run("decode", "--model", model),
		run("embed", "--model", model, "--split", "test"), run("rank"))
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var test struct{ Images, Queries int }
	if err := json.Unmarshal([]byte(stdout), &test); err != nil || test.Images != 3 || test.Queries != 15 {
		t.Errorf("--split test: %+v (%v); want the 3 test images (prepare's 10%%) and their 15 captions\n%s", test, err, stderr)
	}

	// Pixels decoded at another size: embed names the input and the fix.
	tok = run("tokenize", "--model", model, "--in", prep)
	dec = run("decode", "--size", "48")
	emb = run("embed", "--model", model)
	_, stderr, err = pipe(t, tok, dec, emb)
	if err == nil || !strings.Contains(stderr, "embed: stdin: pixels are 48x48 but the model expects 32x32; decode with --model DIR") {
		t.Errorf("size mismatch: %v\n%s", err, stderr)
	}
	if os.Getenv("EMBED_TEST_VERBOSE") != "" {
		t.Log(stderr)
	}
}
