package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/dataset"
	"github.com/clipline/clipline/internal/dataset/webdataset/wdstest"
)

func runErr(t *testing.T, args ...string) (error, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(args, &stdout, &stderr)
	if err != nil && stdout.Len() > 0 {
		t.Errorf("prepare %s failed but wrote %d bytes to stdout", strings.Join(args, " "), stdout.Len())
	}
	return err, stderr.String()
}

// TestWebdataset: a directory of img2dataset-style shards (one gzipped)
// becomes one row per sample with the images' bytes as stored, split by the
// seeded draw over the samples' order; bad samples fail naming shard and
// member, or are skipped and counted.
func TestWebdataset(t *testing.T) {
	dir := t.TempDir()
	shards := filepath.Join(dir, "shards")
	os.Mkdir(shards, 0o755)
	var imgs []string
	for i, f := range []string{"jpeg", "png", "jpeg", "webp", "png"} {
		imgs = append(imgs, wdstest.Image(t, f, uint8(i+1)))
	}
	wdstest.WriteShard(t, filepath.Join(shards, "00000.tar"), false, []wdstest.Member{
		{Name: "000000000.jpg", Data: imgs[0]}, {Name: "000000000.txt", Data: "a dog\n"},
		{Name: "000000000.json", Data: `{"key": "000000000", "url": "https://example.com/0.jpg", "status": "success"}`},
		{Name: "000000001.png", Data: imgs[1]}, {Name: "000000001.txt", Data: "a cat"},
		{Name: "000000001.json", Data: `{"key": "000000001", "url": "https://example.com/1.png"}`},
		{Name: "000000002.jpg", Data: imgs[2]}, {Name: "000000002.txt", Data: "a bird"},
	})
	wdstest.WriteShard(t, filepath.Join(shards, "00001.tar.gz"), true, []wdstest.Member{
		{Name: "000010000.webp", Data: imgs[3]}, {Name: "000010000.txt", Data: "a fish"},
		{Name: "000010001.png", Data: imgs[4]}, {Name: "000010001.json", Data: `{"key": "000010001", "caption": "a frog"}`},
	})
	os.WriteFile(filepath.Join(shards, "00000_stats.json"), []byte("{}"), 0o644) // img2dataset's, not a shard
	out := filepath.Join(dir, "wds.arrow")
	args := []string{"webdataset", shards, "--val-frac", "0.2", "--test-frac", "0.2", "--seed", "7", "--out", out}
	log := runOK(t, args...)
	for _, want := range []string{"2 webdataset shards, 5 samples", "5 images (train=3 val=1 test=1), 5 captions -> " + out} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	tb := readStream(t, out)
	if want := []string{"image_id", "split", "image_bytes", "captions", "url"}; !slices.Equal(tb.columns, want) {
		t.Errorf("columns %v, want %v", tb.columns, want)
	}
	if want := []string{"000000000", "000000001", "000000002", "000010000", "000010001"}; !slices.Equal(tb.ids, want) {
		t.Errorf("ids %v", tb.ids)
	}
	for i := range imgs {
		if !bytes.Equal(tb.images[i], []byte(imgs[i])) {
			t.Errorf("row %d: image bytes differ from the member's", i)
		}
	}
	if want := [][]string{{"a dog"}, {"a cat"}, {"a bird"}, {"a fish"}, {"a frog"}}; !reflect.DeepEqual(tb.captions, want) {
		t.Errorf("captions %v", tb.captions)
	}
	if want := []string{"https://example.com/0.jpg", "https://example.com/1.png", "", "", ""}; !slices.Equal(tb.urls, want) {
		t.Errorf("urls %q", tb.urls)
	}
	if want := (dataset.Fractions{Val: 0.2, Test: 0.2, Seed: 7}).Draw(5); !slices.Equal(tb.splits, want) {
		t.Errorf("splits %v, want the draw's %v", tb.splits, want)
	}
	if len(tb.prov) != 1 || !slices.Equal(tb.prov[0].Args, args) {
		t.Errorf("provenance %+v", tb.prov)
	}

	// --split names the one split; no metadata with a url: no url column.
	one := filepath.Join(dir, "one.tar")
	wdstest.WriteShard(t, one, false, []wdstest.Member{{Name: "k.png", Data: imgs[1]}, {Name: "k.txt", Data: "x"}})
	out2 := filepath.Join(dir, "one.arrow")
	runOK(t, "webdataset", one, "--split", "val", "--out", out2)
	if tb := readStream(t, out2); !slices.Equal(tb.splits, []string{"val"}) || tb.urls != nil || slices.Contains(tb.columns, "url") {
		t.Errorf("--split val: %+v", tb)
	}

	// A sample without a caption: the error names shard and sample; nothing is written.
	bad := filepath.Join(dir, "bad.tar")
	wdstest.WriteShard(t, bad, false, []wdstest.Member{
		{Name: "a.jpg", Data: imgs[0]}, {Name: "a.txt", Data: "fine"},
		{Name: "b.jpg", Data: imgs[2]}, {Name: "b.json", Data: `{"key": "b"}`},
	})
	out3 := filepath.Join(dir, "bad.arrow")
	err, _ := runErr(t, "webdataset", bad, "--out", out3)
	if err == nil || !strings.Contains(err.Error(), "webdataset "+bad+": sample b (b.jpg, b.json): no caption") {
		t.Errorf("bad sample: %v", err)
	}
	if _, err := os.Stat(out3); !os.IsNotExist(err) {
		t.Errorf("a failed run left %s", out3)
	}
	log = runOK(t, "webdataset", bad, "--skip-bad", "--out", out3)
	if !strings.Contains(log, "1 webdataset shards, 2 samples, skipped 1 bad samples") || strings.Count(log, "sample b (b.jpg, b.json): no caption") != 1 {
		t.Errorf("--skip-bad log:\n%s", log)
	}
	if tb := readStream(t, out3); !slices.Equal(tb.ids, []string{"a"}) {
		t.Errorf("--skip-bad rows %v", tb.ids)
	}

	// The same key in two shards is a duplicate image_id.
	err, _ = runErr(t, "webdataset", one, one, "--out", out3)
	if err == nil || !strings.Contains(err.Error(), "webdataset "+one+": sample k: row 1: image_id \"k\" duplicates row 0") {
		t.Errorf("duplicate ids: %v", err)
	}
}
