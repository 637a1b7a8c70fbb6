package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/dataset/webdataset/wdstest"
	"github.com/clipline/clipline/internal/shard"
	"github.com/clipline/clipline/internal/shard/shardtest"
)

// TestShardWebdataset: sharded by shard files (7 parts of 5 files leave two
// empty), the parts equal the unsharded stream: the draw over all samples,
// the url column that only the first shard's metadata has, a bad sample
// skipped.
func TestShardWebdataset(t *testing.T) {
	dir := t.TempDir()
	shards := filepath.Join(dir, "shards")
	os.Mkdir(shards, 0o755)
	n := 0
	for f, count := range []int{3, 1, 4, 2, 3} {
		var members []wdstest.Member
		for range count {
			key := fmt.Sprintf("%09d", n)
			members = append(members, wdstest.Member{Name: key + ".png", Data: wdstest.Image(t, "png", uint8(n))})
			if n != 6 { // sample 6 has no caption: bad
				members = append(members, wdstest.Member{Name: key + ".txt", Data: fmt.Sprint("caption ", n)})
			}
			if f == 0 {
				members = append(members, wdstest.Member{Name: key + ".json", Data: fmt.Sprintf(`{"key": %q, "url": "https://example.com/%d.png"}`, key, n)})
			}
			n++
		}
		wdstest.WriteShard(t, filepath.Join(shards, fmt.Sprintf("%05d.tar", f)), f == 3, members)
	}
	args := []string{"webdataset", shards, "--val-frac", "0.25", "--test-frac", "0.25", "--seed", "3", "--skip-bad"}
	whole := filepath.Join(dir, "whole.arrow")
	runOK(t, append(args, "--out", whole)...)
	shardtest.Check(t, whole, func(t *testing.T, part shard.Spec, out string) {
		runOK(t, append(args, "--shard", part.String(), "--out", out)...)
	})

	// An image_id in two parts' shards is found although no part holds both.
	dup := filepath.Join(dir, "dup")
	os.Mkdir(dup, 0o755)
	for f := range 2 {
		wdstest.WriteShard(t, filepath.Join(dup, fmt.Sprintf("%d.tar", f)), false, []wdstest.Member{
			{Name: "k.png", Data: wdstest.Image(t, "png", 1)}, {Name: "k.txt", Data: "x"}})
	}
	err, _ := runErr(t, "webdataset", dup, "--shard", "0/2", "--out", filepath.Join(dir, "dupparts"))
	if want := "webdataset " + filepath.Join(dup, "1.tar") + ": sample k: image_id \"k\" duplicates a sample of " + filepath.Join(dup, "0.tar"); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("duplicate across parts: %v, want %q", err, want)
	}
}
