package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/shard"
	"github.com/clipline/clipline/internal/shard/shardtest"
)

// TestShard: the parts of N = 1, 3, 7 equal the unsharded output, whether
// a part is a range of the input file's batches or the input directory's
// own part (a sharded run's parts tokenized part by part).
func TestShard(t *testing.T) {
	model := learnedModel(t)
	dir := t.TempDir()
	var captions [][]string
	for i := range 19 { // 10 batches of two rows
		captions = append(captions, testCaptions[i%len(testCaptions)])
		if i%5 == 0 {
			captions[i] = append(captions[i][:len(captions[i]):len(captions[i])], fmt.Sprint("row ", i))
		}
	}
	in, whole := filepath.Join(dir, "in.arrow"), filepath.Join(dir, "whole.arrow")
	writeStream(t, in, captions)
	args := []string{"--model", model, "--context", "16"}
	runOK(t, append(args, "--in", in, "--out", whole)...)
	parts := shardtest.Check(t, whole, func(t *testing.T, part shard.Spec, out string) {
		runOK(t, append(args, "--in", in, "--shard", part.String(), "--out", out)...)
	})
	// The 7 parts as the input: by part for N = 7, by batches of the
	// directory for N = 1 and 3.
	shardtest.Check(t, whole, func(t *testing.T, part shard.Spec, out string) {
		runOK(t, append(args, "--in", parts[7], "--shard", part.String(), "--out", out)...)
	})
}

// TestShardRefused: a part needs random access to its input (not a
// stream), and a directory to write into.
func TestShardRefused(t *testing.T) {
	model := learnedModel(t)
	dir := t.TempDir()
	file, strm := filepath.Join(dir, "in.arrow"), filepath.Join(dir, "in.arrows")
	writeStream(t, file, testCaptions)
	writeStream(t, strm, testCaptions)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--in", strm, "--shard", "0/2", "--out", dir}, "--shard 0/2: " + strm + ": sharding by record batches needs random access"},
		{[]string{"--in", file, "--shard", "0/2"}, "--shard 0/2 writes DIR/part-00000-of-00002.arrow: give --out DIR"},
		{[]string{"--in", file, "--shard", "0/2", "--out", file}, "--out " + file + " must be a directory"},
		{[]string{"--in", file, "--shard", "1/1", "--out", dir}, "--shard 1/1: part 1 does not exist"},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"--model", model}, tc.args...)
		if err := run(args, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("tokenize %s: %v, want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
