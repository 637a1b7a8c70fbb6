package recipes

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/dataset"
	"github.com/clipline/clipline/internal/synthetic"
)

// root is the module's root, relative to this package.
const root = "../.."

// fencedBlock returns the first fenced code block after the heading line
// in a Markdown file of the module.
func fencedBlock(t *testing.T, file, heading string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("%s has no %q heading", file, heading)
	}
	_, after, ok = strings.Cut(after, "```")
	if !ok {
		t.Fatalf("%s: no code block under %q", file, heading)
	}
	_, after, _ = strings.Cut(after, "\n") // the fence's language tag
	block, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatalf("%s: unterminated code block under %q", file, heading)
	}
	return block
}

// workdir is a temporary directory laid out as a clone for recipes: bin/
// with the stages built, and examples/ and testdata/ of the module.
func workdir(t *testing.T, stages ...string) string {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("recipes run in bash, which is not installed")
	}
	dir := t.TempDir()
	args := []string{"build", "-o", filepath.Join(dir, "bin") + string(filepath.Separator)}
	for _, s := range stages {
		args = append(args, "./"+s)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, d := range []string{"examples", "testdata"} {
		abs, err := filepath.Abs(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(abs, filepath.Join(dir, d)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writePairs renders n synthetic scenes into dir/images and writes their
// captions as query/positive lines (paths relative to images/, no split
// keys) to dir/name, as a user's own data would be.
func writePairs(t *testing.T, dir, name string, n int, seed uint64) {
	t.Helper()
	images := filepath.Join(dir, "images")
	rows, _, err := synthetic.Generate(synthetic.Config{Seed: seed, Images: n, Domain: synthetic.Scenes, ImageDir: images})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, r := range rows {
		rel, err := filepath.Rel(images, r.ImagePath)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range r.Captions {
			line, _ := json.Marshal(map[string]string{"query": c, "positive": rel})
			b.Write(append(line, '\n'))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runScript runs script in dir with bash -e -o pipefail, bounded in time;
// a failing command is named on stderr. Stdin is empty.
func runScript(t *testing.T, dir, script string, limit time.Duration) (stdout, stderr string) {
	return runScriptIn(t, dir, script, limit, nil)
}

// runScriptIn is runScript with stdin (nil: /dev/null).
func runScriptIn(t *testing.T, dir, script string, limit time.Duration, stdin *os.File) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	prelude := "set -eo pipefail\ntrap 'echo \"recipe: command failed: $BASH_COMMAND\" >&2' ERR\n"
	cmd := exec.CommandContext(ctx, "bash", "-c", prelude+script)
	cmd.Dir = dir
	if stdin != nil { // else /dev/null: a stage waiting on stdin fails instead of hanging
		cmd.Stdin = stdin
	}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("still running after %s:\n%s\nstderr:\n%s", limit, script, se.String())
	}
	if err != nil {
		t.Fatalf("%v\n%s\nstderr:\n%s", err, script, se.String())
	}
	return so.String(), se.String()
}

// noWarnings fails on stderr lines a user would have to act on.
func noWarnings(t *testing.T, stderr string) {
	t.Helper()
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(strings.ToLower(l), "warning") {
			t.Errorf("stderr has a warning: %s", l)
		}
	}
}

// TestReadmeOwnData runs README's "Your own data" commands verbatim on a
// JSONL of 40 synthetic images without split keys: every command must
// succeed, train must write best/ and rank must measure the test split.
func TestReadmeOwnData(t *testing.T) {
	block := fencedBlock(t, "README.md", "## Your own data")
	dir := workdir(t, "prepare", "tokenize", "decode", "train", "embed", "rank", "report")
	const images = 40
	writePairs(t, dir, "pairs.jsonl", images, 3)
	stdout, stderr := runScript(t, dir, block, 5*time.Minute)
	noWarnings(t, stderr)
	if _, err := os.Stat(filepath.Join(dir, "runs", "mine", "best", "model.safetensors")); err != nil {
		t.Fatalf("train wrote no best/: %v\n%s", err, stderr)
	}
	var m struct {
		Images, Queries int
		T2I             map[string]float64
	}
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatalf("rank's output is not its JSON: %v\n%s", err, stdout)
	}
	// The recipe's --test-frac 0.1 of 40 images, five captions each.
	wantTest := 0
	for _, s := range (dataset.Fractions{Val: 0.1, Test: 0.1}).Draw(images) {
		if s == dataset.Test {
			wantTest++
		}
	}
	if wantTest == 0 || m.Images != wantTest || m.Queries != 5*wantTest {
		t.Fatalf("rank measured %d images and %d queries, want the test split's %d and %d:\n%s", m.Images, m.Queries, wantTest, 5*wantTest, stdout)
	}
	if _, ok := m.T2I["r1"]; !ok {
		t.Fatalf("rank's JSON has no t2i r1:\n%s", stdout)
	}
	rsumUnits(t, dir, stdout)
}

// summary is the part of rank's JSON, a metrics.jsonl validation and
// best_metric.json's eval that the rsum check reads.
type summary struct {
	T2I, I2T map[string]float64
	RSum     *float64
}

// check fails unless rsum is present and is the sum of the six recalls as
// fractions in [0,1], the documented unit.
func (s summary) check(t *testing.T, what string) float64 {
	t.Helper()
	if s.RSum == nil {
		t.Fatalf("%s has no rsum", what)
	}
	sum := 0.0
	for _, dir := range []map[string]float64{s.T2I, s.I2T} {
		for _, k := range []string{"r1", "r5", "r10"} {
			v, ok := dir[k]
			if !ok || !(v >= 0 && v <= 1) {
				t.Fatalf("%s: recall %s = %v (present %v), want a fraction in [0,1]", what, k, v, ok)
			}
			sum += v
		}
	}
	if math.Abs(*s.RSum-sum) > 1e-9 {
		t.Errorf("%s: rsum %v, but the six recalls sum to %v", what, *s.RSum, sum)
	}
	return *s.RSum
}

// rsumUnits: rsum is one unit in the three places it appears. The recipe's
// run dir/runs/mine validated on val; rank over best/ on the val split must
// give the rsum that metrics.jsonl recorded at best/'s step, and report's
// JSON must carry rank's rsum as it is.
func rsumUnits(t *testing.T, dir, testJSON string) {
	t.Helper()
	run := filepath.Join(dir, "runs", "mine")
	raw, err := os.ReadFile(filepath.Join(run, "best", "best_metric.json"))
	if err != nil {
		t.Fatal(err)
	}
	var best struct {
		Step int
		Eval summary
	}
	if err := json.Unmarshal(raw, &best); err != nil {
		t.Fatalf("best_metric.json: %v", err)
	}
	want := best.Eval.check(t, "best_metric.json")
	raw, err = os.ReadFile(filepath.Join(run, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var logged *float64
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec struct {
			Step int
			Eval *summary
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("metrics.jsonl line %q: %v", line, err)
		}
		if rec.Eval != nil && rec.Step == best.Step {
			v := rec.Eval.check(t, "metrics.jsonl")
			logged = &v
		}
	}
	if logged == nil || *logged != want {
		t.Fatalf("metrics.jsonl's validation at step %d: rsum %v, best_metric.json %v", best.Step, logged, want)
	}
	valJSON, _ := runScript(t, dir, "bin/embed --model runs/mine/best --in pairs.pix.arrow | bin/rank --split val", time.Minute)
	var val summary
	if err := json.Unmarshal([]byte(valJSON), &val); err != nil {
		t.Fatalf("rank --split val: %v\n%s", err, valJSON)
	}
	// Train validates with the same encoders; batches may round differently.
	if got := val.check(t, "rank --split val"); math.Abs(got-want) > 1e-6 {
		t.Errorf("rank on val: rsum %v; metrics.jsonl at step %d: %v", got, best.Step, want)
	}

	var test summary
	if err := json.Unmarshal([]byte(testJSON), &test); err != nil {
		t.Fatal(err)
	}
	rsum := test.check(t, "rank --split test")
	if err := os.WriteFile(filepath.Join(dir, "test.json"), []byte(testJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	reportJSON, _ := runScript(t, dir, "bin/report --zero-shot test.json --fine-tuned test.json", time.Minute)
	var rep struct {
		ZeroShot  summary `json:"zero_shot"`
		FineTuned summary `json:"fine_tuned"`
	}
	if err := json.Unmarshal([]byte(reportJSON), &rep); err != nil {
		t.Fatalf("report's JSON: %v\n%s", err, reportJSON)
	}
	for _, s := range []summary{rep.ZeroShot, rep.FineTuned} {
		if got := s.check(t, "report's JSON"); got != rsum {
			t.Errorf("report's JSON has rsum %v for rank's %v", got, rsum)
		}
	}
}

// TestTutorialConfig runs vembed-factory's tutorial config as the make
// target does (pipeline.mk's tutorial: the data keys and the model
// overridden, 30 images, one epoch): train prepares data_path and
// val_data_path itself, validates, and a second run reads the prepared
// data from the cache. Stdin is a pipe nobody writes or closes: train
// must not read it.
func TestTutorialConfig(t *testing.T) {
	dir := workdir(t, "prepare", "train")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	t.Setenv("CLIPLINE_CACHE", filepath.Join(dir, "cache"))
	const train = "bin/train --config examples/tutorial_clip_text_to_image.yaml --model testdata/base-model --set epochs=1 " +
		"--set data_path=data/tutorial/train.jsonl --set val_data_path=data/tutorial/val.jsonl --set image_root=data/tutorial"
	_, stderr := runScriptIn(t, dir, "bin/prepare synthetic --domain scenes --seed 5 --images 30 --render-dir data/tutorial/images --jsonl data/tutorial\n"+
		train+" --out runs/one", 3*time.Minute, r)
	noWarnings(t, stderr)
	for _, want := range []string{"train: preparing data_path data/tutorial/train.jsonl: 24 images (train=24), 120 captions",
		"train: preparing val_data_path data/tutorial/val.jsonl: 3 images (val=3), 15 captions", "validation at step 1", "best (t2i R@1"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "runs", "one", "best", "model.safetensors")); err != nil {
		t.Fatalf("no best/: %v", err)
	}
	cache := filepath.Join(dir, "cache", "data")
	before, err := os.ReadDir(cache)
	if err != nil || len(before) != 2 {
		t.Fatalf("cache %s: %v %v", cache, before, err)
	}
	_, stderr = runScriptIn(t, dir, train+" --out runs/two", 3*time.Minute, r)
	if strings.Contains(stderr, "preparing") || strings.Count(stderr, ": prepared data cached at "+cache) != 2 {
		t.Errorf("second run did not read the cache:\n%s", stderr)
	}
	after, _ := os.ReadDir(cache)
	if len(after) != 2 {
		t.Errorf("cache entries %d after the second run, want the 2 of the first", len(after))
	}
	for i := range min(len(before), len(after)) {
		b, _ := before[i].Info()
		a, _ := after[i].Info()
		if a.Name() != b.Name() || !a.ModTime().Equal(b.ModTime()) || a.Size() != b.Size() {
			t.Errorf("cache entry %s changed on a hit", b.Name())
		}
	}
}
