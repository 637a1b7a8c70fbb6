package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/cli/clitest"
	"github.com/clipline/clipline/internal/train"
)

// TestMain runs the stage itself when re-executed by the signal tests
// (clitest.Command with the mode a duration), with each step's progress
// line held for that long so that a signal sent on one arrives before the
// next step ends.
func TestMain(m *testing.M) {
	hold, err := time.ParseDuration(clitest.Mode())
	if err != nil {
		os.Exit(m.Run())
	}
	cli.Main("train", func(args []string, stdout, stderr io.Writer) error {
		return run(args, stdout, slowSteps{stderr, hold})
	})
	os.Exit(0)
}

type slowSteps struct {
	w    io.Writer
	hold time.Duration
}

func (s slowSteps) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if bytes.HasPrefix(p, []byte("train: step ")) {
		time.Sleep(s.hold)
	}
	return n, err
}

// signalFixture is a tiny base model and input: 12 training pairs, batch 4,
// 3 epochs: 9 steps.
func signalFixture(t *testing.T) (dir string, args func(out string, extra ...string) []string) {
	dir = t.TempDir()
	base, in := tinyRun(t, dir)
	return dir, func(out string, extra ...string) []string {
		return append([]string{"--model", base, "--in", in, "--out", out, "--set", "epochs=3", "--set", "batch_size=4",
			"--set", "lora_r=2", "--set", "learning_rate=1e-3", "--set", "logging_steps=1"}, extra...)
	}
}

// startChild runs train in a child process, holding each step's line for
// hold; sig is sent to it when a stderr
// line starts with at[0], again at at[1], and so on. It returns the exit
// status and the stderr lines.
func startChild(t *testing.T, hold string, args []string, sig syscall.Signal, at ...string) (int, []string) {
	t.Helper()
	cmd := clitest.Command(t, hold, args...)
	pr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(at) > 0 && strings.HasPrefix(sc.Text(), at[0]) {
			cmd.Process.Signal(sig)
			at = at[1:]
		}
	}
	return clitest.ExitStatus(t, cmd, cmd.Wait()), lines
}

func noTemporaries(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("%s left in %s", e.Name(), dir)
		}
	}
}

// SIGINT during train: the current step finishes, its checkpoint is saved,
// the line names it and the flag to resume, the exit status is 130; and
// resuming ends with the weights and metrics of an uninterrupted run.
func TestInterruptedTrainResumes(t *testing.T) {
	dir, args := signalFixture(t)
	outA, outB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	var so, se bytes.Buffer
	if err := run(args(outA), &so, &se); err != nil {
		t.Fatalf("%v\n%s", err, se.String())
	}

	code, lines := startChild(t, "100ms", args(outB), syscall.SIGINT, "train: step 4/")
	ck := filepath.Join(outB, "checkpoint-4")
	if code != 130 {
		t.Errorf("exit status %d, want 130", code)
	}
	wantLines := []string{"train: SIGINT: finishing the current step to save a checkpoint (again to stop at once)",
		"train: interrupted by SIGINT after step 4/9; checkpoint in " + ck + "; to resume, run the same command with --resume " + ck}
	got := strings.Join(lines, "\n")
	if !strings.Contains(got, wantLines[0]) || len(lines) == 0 || lines[len(lines)-1] != wantLines[1] {
		t.Fatalf("stderr:\n%s\nwant the lines\n%s", got, strings.Join(wantLines, "\n"))
	}
	if _, err := os.Stat(filepath.Join(ck, train.OptimizerFile)); err != nil {
		t.Errorf("no resumable checkpoint: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outB, "final")); err == nil {
		t.Error("the interrupted run wrote final/")
	}
	noTemporaries(t, outB)

	// Running it again without --resume is refused and says how to continue.
	err := run(args(outB), &so, &se)
	if err == nil || !strings.Contains(err.Error(), "--resume "+ck) {
		t.Fatalf("re-run into the interrupted run's dir: %v", err)
	}
	if err := run(args(outB, "--resume", ck), &so, &se); err != nil {
		t.Fatalf("resume: %v\n%s", err, se.String())
	}
	for _, f := range []string{"final/model.safetensors", "final/adapter/adapter_model.safetensors", "best/model.safetensors",
		"checkpoint-9/optimizer.safetensors", "checkpoint-9/trainable.safetensors"} {
		a, err1 := os.ReadFile(filepath.Join(outA, f))
		b, err2 := os.ReadFile(filepath.Join(outB, f))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between the uninterrupted and the resumed run (%v, %v)", f, err1, err2)
		}
	}
	ra, rb := metricsRecords(t, outA), metricsRecords(t, outB)
	if len(ra) != 9+3 || len(ra) != len(rb) { // 9 steps, 3 validations
		t.Fatalf("metrics.jsonl: %d records uninterrupted, %d resumed", len(ra), len(rb))
	}
	for i := range ra {
		if ra[i].Step != rb[i].Step || !reflect.DeepEqual(ra[i].Loss, rb[i].Loss) || !reflect.DeepEqual(ra[i].LR, rb[i].LR) ||
			!reflect.DeepEqual(ra[i].Eval, rb[i].Eval) {
			t.Errorf("metrics record %d: %+v vs %+v", i, ra[i], rb[i])
		}
	}

	// --overwrite starts over in the finished run's directory.
	if err := run(args(outB), &so, &se); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("re-run into a finished run's dir: %v", err)
	}
	se.Reset()
	if err := run(args(outB, "--overwrite", "--set", "epochs=1"), &so, &se); err != nil {
		t.Fatalf("--overwrite: %v\n%s", err, se.String())
	}
	if ents, _ := os.ReadDir(outB); len(ents) != 4 { // checkpoint-3, best, final, metrics.jsonl
		t.Errorf("after --overwrite: %v", ents)
	}
}

// SIGTERM exits 143 after the checkpoint; a second signal exits at once,
// with no checkpoint of the step and no temporary left.
func TestSignalExitStatus(t *testing.T) {
	dir, args := signalFixture(t)
	out := filepath.Join(dir, "term")
	code, lines := startChild(t, "100ms", args(out), syscall.SIGTERM, "train: step 2/")
	if code != 143 || !strings.Contains(strings.Join(lines, "\n"), "interrupted by SIGTERM after step 2/9") {
		t.Errorf("SIGTERM: exit status %d, stderr:\n%s", code, strings.Join(lines, "\n"))
	}
	out = filepath.Join(dir, "twice")
	start := time.Now()
	// The second signal once the first is seen (pending signals merge).
	code, lines = startChild(t, "3s", args(out), syscall.SIGINT, "train: step 2/", "train: SIGINT: finishing")
	if code != 130 {
		t.Errorf("second SIGINT: exit status %d, want 130", code)
	}
	if s := strings.Join(lines, "\n"); strings.Contains(s, "checkpoint in") || strings.Contains(s, "step 3/") {
		t.Errorf("second SIGINT did not stop at once:\n%s", s)
	}
	// Steps 1 and 2 hold their lines for 3 s each: under 5 s means the
	// second signal cut step 2's short.
	if d := time.Since(start); !(d < 5*time.Second) {
		t.Errorf("took %s", d)
	}
	noTemporaries(t, out)
}

func metricsRecords(t *testing.T, dir string) []train.Record {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []train.Record
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var r train.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("metrics.jsonl %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}
