package main

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/clipline/clipline/internal/dataset"
	"github.com/clipline/clipline/internal/stream"
)

// table is a stream read back into plain columns; image_path, image_bytes
// and url are read where the stream has them (urls: "" for null).
type table struct {
	columns            []string
	ids, splits, paths []string
	images             [][]byte
	captions           [][]string
	urls               []string
	prov               []stream.Step
}

func readStream(t *testing.T, path string) table {
	t.Helper()
	r, err := stream.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Require(stream.ColImageID, stream.ColSplit, stream.ColCaptions); err != nil {
		t.Fatal(err)
	}
	var tb table
	for _, f := range r.Schema().Fields() {
		tb.columns = append(tb.columns, f.Name)
	}
	tb.prov, err = stream.Provenance(r.Schema())
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		rec := r.Batch()
		ids, _ := stream.Strings(rec, stream.ColImageID)
		splits, _ := stream.Strings(rec, stream.ColSplit)
		caps, err := stream.StringLists(rec, stream.ColCaptions)
		if err != nil {
			t.Fatal(err)
		}
		tb.ids = append(tb.ids, ids...)
		tb.splits = append(tb.splits, splits...)
		tb.captions = append(tb.captions, caps...)
		has := func(name string) bool { return len(rec.Schema().FieldIndices(name)) == 1 }
		if has(stream.ColImagePath) {
			paths, _ := stream.Strings(rec, stream.ColImagePath)
			tb.paths = append(tb.paths, paths...)
		}
		if has(stream.ColImageBytes) {
			imgs, err := stream.Binaries(rec, stream.ColImageBytes)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range imgs {
				tb.images = append(tb.images, slices.Clone(b))
			}
		}
		if has(dataset.ColURL) {
			u := rec.Column(rec.Schema().FieldIndices(dataset.ColURL)[0]).(*array.String)
			for i := range u.Len() {
				tb.urls = append(tb.urls, u.Value(i)) // "" where null
			}
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return tb
}

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(args, &stdout, &stderr); err != nil {
		t.Fatalf("prepare %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stderr.String()
}

func TestSyntheticStream(t *testing.T) {
	dir := t.TempDir()
	imgs := filepath.Join(dir, "imgs")
	out1, out2 := filepath.Join(dir, "a.arrow"), filepath.Join(dir, "b.arrow")
	args := []string{"synthetic", "--domain", "scenes", "--seed", "3", "--images", "50", "--render-dir", imgs, "--test-frac", "0.2"}
	log := runOK(t, append(args, "--out", out1)...)
	if !strings.Contains(log, "50 images (train=35 val=5 test=10), 250 captions") {
		t.Fatalf("summary: %s", log)
	}
	tb := readStream(t, out1)
	if len(tb.ids) != 50 {
		t.Fatalf("%d rows", len(tb.ids))
	}
	counts := map[string]int{}
	for i := range tb.ids {
		counts[tb.splits[i]]++
		if len(tb.captions[i]) != 5 {
			t.Fatalf("row %d: %d captions", i, len(tb.captions[i]))
		}
		if !filepath.IsAbs(tb.paths[i]) {
			t.Fatalf("row %d: relative path %s", i, tb.paths[i])
		}
		if _, err := os.Stat(tb.paths[i]); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(counts, map[string]int{"train": 35, "val": 5, "test": 10}) {
		t.Fatalf("splits %v", counts)
	}
	if len(tb.prov) != 1 || tb.prov[0].Stage != "prepare" || !reflect.DeepEqual(tb.prov[0].Args, append(args, "--out", out1)) {
		t.Fatalf("provenance %+v", tb.prov)
	}
	// Same seed and flags: the same stream, byte for byte (the output name
	// differs, so compare with it in the arguments swapped back).
	runOK(t, append(args, "--out", out2)...)
	a, _ := os.ReadFile(out1)
	b, _ := os.ReadFile(out2)
	if !bytes.Equal(a, bytes.ReplaceAll(b, []byte(out2), []byte(out1))) {
		t.Fatal("same seed, different stream bytes")
	}
	// zstd output reads back the same.
	outz := filepath.Join(dir, "z.arrow")
	runOK(t, append(args, "--out", outz, "--compress", "zstd")...)
	tz := readStream(t, outz)
	if !reflect.DeepEqual(tz.captions, tb.captions) || !reflect.DeepEqual(tz.paths, tb.paths) {
		t.Fatal("zstd stream differs")
	}
}

func TestStdoutStream(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	// --image-dir: the hidden alias of --render-dir that older scripts use.
	if err := run([]string{"synthetic", "--images", "5", "--image-dir", dir}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "s.arrow")
	os.WriteFile(p, stdout.Bytes(), 0o644)
	if tb := readStream(t, p); len(tb.ids) != 5 {
		t.Fatalf("%d rows on stdout", len(tb.ids))
	}
	if strings.Contains(stderr.String(), "\x00") {
		t.Fatal("binary on stderr")
	}
}

func TestJSONLStream(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.jpg", "b.jpg"} {
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644)
	}
	jl := filepath.Join(dir, "pairs.jsonl")
	os.WriteFile(jl, []byte(`{"query":"two cats","positive":["a.jpg","b.jpg"]}
{"caption":"a cat","image":"a.jpg"}
{"query":"lost","positive":"gone.jpg"}
`), 0o644)
	out := filepath.Join(dir, "out.arrow")
	var stdout, stderr bytes.Buffer
	err := run([]string{"jsonl", jl, "--out", out}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), jl+":3:") || !strings.Contains(err.Error(), "gone.jpg") {
		t.Fatalf("want missing-image error at line 3, got %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("output written despite the error")
	}
	log := runOK(t, "jsonl", jl, "--skip-missing", "--out", out)
	if !strings.Contains(log, "skipped 1 missing images") {
		t.Fatalf("log %s", log)
	}
	tb := readStream(t, out)
	want := [][]string{{"two cats", "a cat"}, {"two cats"}}
	if !reflect.DeepEqual(tb.captions, want) || !reflect.DeepEqual(tb.ids, []string{"a.jpg", "b.jpg"}) {
		t.Fatalf("%+v", tb)
	}
	// Malformed line: error names file and line; --skip-bad counts it.
	os.WriteFile(jl, []byte("{\"query\":\"a cat\",\"image\":\"a.jpg\"}\n{oops\n"), 0o644)
	if err := run([]string{"jsonl", jl, "--out", out}, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), jl+":2:") {
		t.Fatalf("got %v", err)
	}
	if log := runOK(t, "jsonl", jl, "--skip-bad", "--out", out); !strings.Contains(log, "skipped 1 malformed lines of 2") {
		t.Fatalf("log %s", log)
	}
}

func TestEmptyInputsFail(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.jsonl")
	os.WriteFile(empty, nil, 0o644)
	out := filepath.Join(dir, "out.arrow")
	var stdout, stderr bytes.Buffer
	for _, args := range [][]string{
		{"jsonl", empty, "--out", out},
		{"flickr30k", "--dir", dir, "--out", out},
		{"flickr30k", "--out", out},
		{"synthetic", "--images", "0", "--render-dir", dir, "--out", out},
	} {
		if err := run(args, &stdout, &stderr); err == nil {
			t.Errorf("%v accepted", args)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("%v left an output", args)
		}
	}
	if stdout.Len() != 0 {
		t.Fatal("bytes on stdout from failed runs")
	}
}

// miniMirror serves a tiny copy of nlphuji/flickr30k: the annotation CSV
// and a zip of the images folder.
func miniMirror(t *testing.T) *httptest.Server {
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	var cbuf bytes.Buffer
	cw := csv.NewWriter(&cbuf)
	cw.Write([]string{"raw", "sentids", "split", "filename", "img_id"})
	for i, split := range []string{"train", "train", "val", "test"} {
		name := []string{"11.jpg", "22.jpg", "33.jpg", "44.jpg"}[i]
		w, _ := zw.Create("flickr30k-images/" + name)
		w.Write([]byte("\xff\xd8 image " + name)) // a JPEG's first bytes, for --embed-images
		raw, _ := json.Marshal([]string{"caption one of " + name, "caption, two, of " + name})
		cw.Write([]string{string(raw), "[0, 1]", split, name, "0"})
	}
	zw.Close()
	cw.Flush()
	files := map[string][]byte{"flickr_annotations_30k.csv": cbuf.Bytes(), "flickr30k-images.zip": zbuf.Bytes()}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, ok := files[strings.TrimPrefix(r.URL.Path, "/ds/resolve/main/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
}

func TestFlickrDownload(t *testing.T) {
	ts := miniMirror(t)
	defer ts.Close()
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	out := filepath.Join(dir, "f.arrow")
	log := runOK(t, "flickr30k", "--download", "--base-url", ts.URL+"/ds/resolve/main", "--cache-dir", cache, "--out", out)
	if !strings.Contains(log, "flickr30k-images.zip") || !strings.Contains(log, "differ from Karpathy") {
		t.Fatalf("log %s", log)
	}
	tb := readStream(t, out)
	if !reflect.DeepEqual(tb.ids, []string{"11", "22", "33", "44"}) || !reflect.DeepEqual(tb.splits, []string{"train", "train", "val", "test"}) {
		t.Fatalf("%+v", tb)
	}
	if tb.captions[3][1] != "caption, two, of 44.jpg" {
		t.Fatalf("captions %q", tb.captions[3])
	}
	want := filepath.Join(cache, "images", "flickr30k-images", "44.jpg")
	if tb.paths[3] != want {
		t.Fatalf("path %s, want %s", tb.paths[3], want)
	}
	// The unpacked cache converts with --dir too, without the server.
	ts.Close()
	out2 := filepath.Join(dir, "g.arrow")
	runOK(t, "flickr30k", "--dir", cache, "--out", out2)
	if tb2 := readStream(t, out2); !reflect.DeepEqual(tb2.paths, tb.paths) {
		t.Fatal("--dir conversion differs")
	}
	runOK(t, "flickr30k", "--dir", cache, "--embed-images", "--out", out2)
	if b := imageBytes(t, out2); len(b) != 4 || string(b[3]) != "\xff\xd8 image 44.jpg" {
		t.Fatalf("--embed-images: %q", b)
	}
}

func TestHelpExplains(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run([]string{"--help"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"synthetic", "jsonl", "flickr30k", "webdataset", "parquet", "image_bytes", "ABSOLUTE", "image_id", "--out"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	if err := run([]string{"synthetic", "--domain", "faces", "--render-dir", "x"}, &stdout, &stderr); err == nil {
		t.Error("bad domain accepted")
	}
}
