package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/shard"
	"github.com/clipline/clipline/internal/shard/shardtest"
	"github.com/clipline/clipline/internal/stream"
)

// TestShardSynthetic: the parts of N = 1, 3, 7 concatenate to the
// unsharded stream (the split draw is over the whole dataset), and a part
// renders only its own images, byte for byte the unsharded run's.
func TestShardSynthetic(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "imgs")
	args := []string{"synthetic", "--domain", "scenes", "--seed", "5", "--images", "23", "--render-dir", imgs, "--val-frac", "0.2", "--test-frac", "0.2"}
	whole := filepath.Join(dir, "whole.arrow")
	runOK(t, append(args, "--out", whole)...)
	shardtest.Check(t, whole, func(t *testing.T, part shard.Spec, out string) {
		runOK(t, append(args, "--shard", part.String(), "--out", out)...)
	})

	own := filepath.Join(dir, "own")
	out := filepath.Join(dir, "parts")
	args[len(args)-5] = own // --render-dir
	log := runOK(t, append(args, "--shard", "1/3", "--out", out)...)
	if !strings.Contains(log, "rendered 8 scenes images") || !strings.Contains(log, "8 images (part 1/3 of 23)") {
		t.Errorf("log: %s", log)
	}
	tb := readStream(t, filepath.Join(out, "part-00001-of-00003.arrow"))
	var names []string
	for i, p := range tb.paths {
		names = append(names, filepath.Base(p))
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if want, err := os.ReadFile(filepath.Join(imgs, filepath.Base(p))); err != nil || !bytes.Equal(got, want) {
			t.Errorf("row %d: %s differs from the unsharded run's (%v)", i, p, err)
		}
	}
	slices.Sort(names)
	if rendered := dirNames(own); len(names) != 8 || !slices.Equal(rendered, names) {
		t.Errorf("part 1/3 rendered %v, want its rows' %v", rendered, names)
	}
}

// TestShardJSONL: the same for a JSONL source split by --val-frac.
func TestShardJSONL(t *testing.T) {
	dir := t.TempDir()
	var lines strings.Builder
	for i := range 20 {
		img := filepath.Join(dir, fmt.Sprintf("img%02d.png", i))
		if err := os.WriteFile(img, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&lines, "{\"query\": \"caption %d\", \"positive\": %q}\n", i, img)
		if i%3 == 0 {
			fmt.Fprintf(&lines, "{\"query\": \"another caption %d\", \"positive\": %q}\n", i, img)
		}
	}
	jl := filepath.Join(dir, "pairs.jsonl")
	if err := os.WriteFile(jl, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"jsonl", jl, "--val-frac", "0.25", "--test-frac", "0.25", "--seed", "9"}
	whole := filepath.Join(dir, "whole.arrow")
	runOK(t, append(args, "--out", whole)...)
	shardtest.Check(t, whole, func(t *testing.T, part shard.Spec, out string) {
		runOK(t, append(args, "--shard", part.String(), "--out", out)...)
	})
}

// TestShardEnv: --shard env takes the part from a Slurm array task's or a
// Kubernetes Indexed Job pod's environment.
func TestShardEnv(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "imgs")
	args := []string{"synthetic", "--images", "12", "--render-dir", imgs, "--shard", "env"}
	out := filepath.Join(dir, "parts")
	t.Setenv("SLURM_ARRAY_TASK_ID", "5")
	t.Setenv("SLURM_ARRAY_TASK_MIN", "3")
	t.Setenv("SLURM_ARRAY_TASK_COUNT", "4")
	runOK(t, append(args, "--out", out)...) // part 2 of 4
	os.Unsetenv("SLURM_ARRAY_TASK_ID")
	t.Setenv("JOB_COMPLETION_INDEX", "1")
	t.Setenv("CLIPLINE_SHARD_COUNT", "4")
	runOK(t, append(args, "--out", out)...) // part 1 of 4
	runOK(t, append(args, "--shard-count", "3", "--out", out)...)
	if names, want := dirNames(out), []string{"part-00001-of-00003.arrow", "part-00001-of-00004.arrow", "part-00002-of-00004.arrow"}; !slices.Equal(names, want) {
		t.Errorf("wrote %v, want %v", names, want)
	}
	if tb := readStream(t, filepath.Join(out, "part-00002-of-00004.arrow")); !slices.Equal(tb.ids, []string{"general-00006", "general-00007", "general-00008"}) {
		t.Errorf("part 2/4 holds %v", tb.ids)
	}
}

// TestShardEmptyPart: with more parts than rows some parts are empty: a
// stream of no rows with the columns of the others, not an error.
func TestShardEmptyPart(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "parts")
	var rows []string
	for k := range 5 {
		log := runOK(t, "synthetic", "--images", "2", "--render-dir", filepath.Join(dir, "imgs"), "--shard", fmt.Sprint(k, "/5"), "--out", out)
		tb := readStream(t, filepath.Join(out, stream.PartName(k, 5)))
		if want := fmt.Sprintf("prepare: %d images (part %d/5 of 2)", len(tb.ids), k); !strings.Contains(log, want) {
			t.Errorf("part %d: log %q, want %q", k, log, want)
		}
		rows = append(rows, tb.ids...)
	}
	if !slices.Equal(rows, []string{"general-00000", "general-00001"}) {
		t.Errorf("parts hold %v", rows)
	}
}

// TestShardRefused: --shard needs --out DIR, and writes no JSONL.
func TestShardRefused(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"synthetic", "--images", "3", "--render-dir", dir, "--shard", "0/2"}, "--shard 0/2 writes DIR/part-00000-of-00002.arrow: give --out DIR"},
		{[]string{"synthetic", "--images", "3", "--render-dir", dir, "--shard", "0/2", "--jsonl", dir}, "--jsonl " + dir + " writes JSONL files, not parts: drop --shard 0/2"},
		{[]string{"synthetic", "--images", "3", "--render-dir", dir, "--shard", "2/2", "--out", dir}, "--shard 2/2: part 2 does not exist"},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(tc.args, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("prepare %s: %v, want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// dirNames lists dir's entries, sorted.
func dirNames(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
