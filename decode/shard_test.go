package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/shard"
	"github.com/clipline/clipline/internal/shard/shardtest"
)

// TestShard: the parts of N = 1, 3, 7 equal the unsharded output, a row
// dropped by --skip-bad included.
func TestShard(t *testing.T) {
	dir := t.TempDir()
	files := fixture(t, dir)
	bad := filepath.Join(dir, "bad.png")
	if err := os.WriteFile(bad, []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	var ids, paths []string
	for i := range 19 {
		ids, paths = append(ids, fmt.Sprint("img", i)), append(paths, files[i%len(files)])
	}
	paths[11] = bad
	in, small, whole := filepath.Join(dir, "in.arrow"), filepath.Join(dir, "small.arrow"), filepath.Join(dir, "whole.arrow")
	writeStream(t, in, ids, paths)
	shardtest.Rebatch(t, in, small, 2)
	decode := func(t *testing.T, args ...string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args = append([]string{"--size", "8", "--skip-bad", "--in", small}, args...)
		if err := run(args, &stdout, &stderr); err != nil {
			t.Fatalf("decode %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
	}
	decode(t, "--out", whole)
	if got := shardtest.Read(t, whole).Rows; got != 18 {
		t.Fatalf("%d rows decoded, want 18 (one bad)", got)
	}
	shardtest.Check(t, whole, func(t *testing.T, part shard.Spec, out string) {
		decode(t, "--shard", part.String(), "--out", out)
	})
}
