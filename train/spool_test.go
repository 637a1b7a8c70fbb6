package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/clipline/clipline/internal/cli/clitest"
)

// An Arrow IPC file is mapped as it is; the same rows piped on stdin are
// spooled into output_dir/cache and mapped from there; the same rows in a
// stream file are spooled too, and an interrupted run keeps that spool for
// --resume, which reuses it. All three train to the same bytes, and each
// finished run removes its spool.
func TestSpooledEqualsMapped(t *testing.T) {
	dir := t.TempDir()
	base, _ := tinyRun(t, dir)
	file, strm := filepath.Join(dir, "rows.arrow"), filepath.Join(dir, "rows.arrows")
	writeInputBatches(t, file, 8, 32, 3) // 3 record batches: images from several blocks
	writeInputBatches(t, strm, 8, 32, 3)
	args := func(out string, extra ...string) []string {
		return append([]string{"--model", base, "--out", out, "--set", "epochs=3", "--set", "batch_size=4",
			"--set", "lora_r=2", "--set", "learning_rate=1e-3", "--set", "logging_steps=1"}, extra...)
	}
	mapped, piped, resumed := filepath.Join(dir, "mapped"), filepath.Join(dir, "piped"), filepath.Join(dir, "resumed")

	var so, se bytes.Buffer
	if err := run(args(mapped, "--in", file), &so, &se); err != nil {
		t.Fatalf("%v\n%s", err, se.String())
	}
	if strings.Contains(se.String(), "spool") {
		t.Errorf("an uncompressed IPC file with pixels was spooled:\n%s", se.String())
	}

	cmd := clitest.Command(t, "0s", args(piped)...)
	in, err := os.Open(strm)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	cmd.Stdin = in
	log, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(log), "train: spooled stdin to "+filepath.Join(piped, "cache", "train-stdin.arrow")) {
		t.Fatalf("stdin: %v\n%s", err, log)
	}

	code, lines := startChild(t, "100ms", args(resumed, "--in", strm), syscall.SIGINT, "train: step 4/")
	spools, _ := filepath.Glob(filepath.Join(resumed, "cache", "train-*.arrow"))
	if code != 130 || len(spools) != 1 {
		t.Fatalf("interrupted: exit status %d, spools %v\n%s", code, spools, strings.Join(lines, "\n"))
	}
	se.Reset()
	if err := run(args(resumed, "--in", strm, "--resume", filepath.Join(resumed, "checkpoint-4")), &so, &se); err != nil {
		t.Fatalf("resume: %v\n%s", err, se.String())
	}
	if !strings.Contains(se.String(), "train: "+strm+": reusing "+spools[0]) {
		t.Errorf("the resumed run did not reuse the spool:\n%s", se.String())
	}

	for _, out := range []string{piped, resumed} {
		if _, err := os.Stat(filepath.Join(out, "cache")); !os.IsNotExist(err) {
			t.Errorf("%s/cache is still there after the run (%v)", out, err)
		}
		for _, f := range []string{"final/model.safetensors", "final/adapter/adapter_model.safetensors", "best/model.safetensors",
			"checkpoint-9/optimizer.safetensors", "checkpoint-9/trainable.safetensors"} {
			a, err1 := os.ReadFile(filepath.Join(mapped, f))
			b, err2 := os.ReadFile(filepath.Join(out, f))
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				t.Errorf("%s differs between the mapped file's run and %s (%v, %v)", f, out, err1, err2)
			}
		}
	}
}
