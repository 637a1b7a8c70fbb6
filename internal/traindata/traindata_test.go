package traindata

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/clipline/clipline/internal/config"
	"github.com/clipline/clipline/internal/dataset/jsonl"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/stream/streamtest"
	"github.com/clipline/clipline/internal/synthetic"
	"github.com/clipline/clipline/internal/train"
)

// baseModel is the bundled base model: a real vocabulary and preprocessor.
const baseModel = "../../testdata/base-model"

// tutorialData renders n synthetic scenes into dir/images and writes them
// as dir/train.jsonl, val.jsonl and test.jsonl.
func tutorialData(t *testing.T, dir string, n int) {
	t.Helper()
	rows, _, err := synthetic.Generate(synthetic.Config{Seed: 5, Images: n, Domain: synthetic.Scenes,
		ImageDir: filepath.Join(dir, "images"), ValFrac: 0.2, TestFrac: 0.1, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jsonl.WriteSplits(dir, rows, nil); err != nil {
		t.Fatal(err)
	}
}

func cacheFiles(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	m := map[string]time.Time{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = fi.ModTime()
	}
	return m
}

// TestPrepareCaches: a JSONL is prepared once; a second Prepare reads the
// cache entry untouched; editing the JSONL, or an image, prepares anew.
func TestPrepareCaches(t *testing.T) {
	dir := t.TempDir()
	tutorialData(t, dir, 12)
	cache := filepath.Join(dir, "cache")
	var log bytes.Buffer
	o := PrepareOptions{Key: "data_path", Where: "F:1", Split: "train", ImageRoot: dir, ModelDir: baseModel, CacheDir: cache, Log: &log}
	file := filepath.Join(dir, "train.jsonl")
	first, err := Prepare(file, o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "train: preparing data_path "+file+": 9 images (train=9), 45 captions") ||
		!strings.Contains(log.String(), "cached at "+first) || filepath.Dir(first) != cache {
		t.Fatalf("first run's log:\n%s", log.String())
	}
	before := cacheFiles(t, cache)
	log.Reset()
	again, err := Prepare(file, o)
	if err != nil {
		t.Fatal(err)
	}
	if again != first || log.String() != "train: data_path "+file+": prepared data cached at "+first+"\n" {
		t.Fatalf("second run: %s, log %q", again, log.String())
	}
	if after := cacheFiles(t, cache); len(after) != 1 || !after[filepath.Base(first)].Equal(before[filepath.Base(first)]) {
		t.Fatalf("the cache changed on a hit: %v -> %v", before, after)
	}
	// The prepared stream is what train reads: tokens and pixels for the model.
	ro, err := train.ModelReadOptions(baseModel)
	if err != nil {
		t.Fatal(err)
	}
	r, err := stream.Open(first)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, err := train.ReadSplits(r, []string{"train"}, ro)
	if err != nil || d["train"].Images() != 9 || d["train"].Pairs() != 45 {
		t.Fatalf("reading %s: %v", first, err)
	}

	// An edited JSONL (one caption fewer) is another key.
	raw, _ := os.ReadFile(file)
	lines := strings.SplitAfter(string(raw), "\n")
	if err := os.WriteFile(file, []byte(strings.Join(lines[1:], "")), 0o644); err != nil {
		t.Fatal(err)
	}
	edited, err := Prepare(file, o)
	if err != nil || edited == first || !strings.Contains(log.String(), "preparing") {
		t.Fatalf("edited JSONL: %s (%v), first %s", edited, err, first)
	}
	// So is an image touched later (same bytes, new time).
	img := filepath.Join(dir, "images", strings.Split(strings.Split(lines[1], `"positive":"`)[1], `"`)[0][len("images/"):])
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(img, later, later); err != nil {
		t.Fatal(err)
	}
	touched, err := Prepare(file, o)
	if err != nil || touched == edited || touched == first {
		t.Fatalf("touched image: %s (%v)", touched, err)
	}
	// A stream that already has tokens and pixels is read as it is.
	if p, err := Prepare(first, o); err != nil || p != first {
		t.Fatalf("prepared stream: %s (%v)", p, err)
	}
	if len(cacheFiles(t, cache)) != 3 {
		t.Fatalf("cache %v", cacheFiles(t, cache))
	}
}

// TestResolveAndLoad: data_path and val_data_path give the splits; --in
// beats data_path (and says so); a terminal stdin is refused only when
// nothing else names the data.
func TestResolveAndLoad(t *testing.T) {
	dir := t.TempDir()
	tutorialData(t, dir, 20)
	cfg := config.Default()
	cfg.DataPath, cfg.ValDataPath, cfg.ImageRoot = filepath.Join(dir, "train.jsonl"), filepath.Join(dir, "val.jsonl"), dir
	cfg.OutputDir = filepath.Join(dir, "out")
	where := func(k string) string { return "cfg.yaml:" + k }
	var log bytes.Buffer
	s, err := Resolve("", "", cfg, where, nil, &log)
	if err != nil {
		t.Fatal(err)
	}
	s.CacheDir = filepath.Join(dir, "cache")
	ro, err := train.ModelReadOptions(baseModel)
	if err != nil {
		t.Fatal(err)
	}
	tr, val, err := s.Load(baseModel, ro)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(false)
	if tr.Images() != 14 || val == nil || val.Images() != 4 || val.Pairs() != 20 {
		t.Fatalf("train %d images, val %v", tr.Images(), val)
	}
	// --in wins over data_path; the note names both.
	log.Reset()
	if _, err := Resolve("x.arrow", "", cfg, where, nil, &log); err != nil || !strings.Contains(log.String(), "reading --in x.arrow; data_path "+cfg.DataPath+" (cfg.yaml:data_path) is not read") {
		t.Fatalf("%v %q", err, log.String())
	}
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer pty.Close()
	if _, err := Resolve("", "", cfg, where, pty, nil); err != nil {
		t.Fatalf("data_path with a terminal stdin: %v", err)
	}
	cfg.DataPath = ""
	if _, err := Resolve("", "", cfg, where, pty, nil); err == nil || !strings.Contains(err.Error(), "stdin is a terminal: expected an Arrow stream of tokenized rows") {
		t.Fatalf("no data on a terminal: %v", err)
	}
}

// A data_path stream whose images are inside it (image_bytes, no
// image_path) is prepared from those bytes: the same pixels as from the
// image files the JSONL names.
func TestPrepareImageBytes(t *testing.T) {
	dir := t.TempDir()
	tutorialData(t, dir, 6)
	file := filepath.Join(dir, "train.jsonl")
	rows, _, err := jsonl.ReadFile(file, jsonl.Options{ImageRoot: dir, DefaultSplit: "train"})
	if err != nil {
		t.Fatal(err)
	}
	var ids, splits []string
	var caps [][]string
	var imgs [][]byte
	for _, r := range rows {
		b, err := os.ReadFile(r.ImagePath)
		if err != nil {
			t.Fatal(err)
		}
		ids, splits, caps, imgs = append(ids, r.ImageID), append(splits, r.Split), append(caps, r.Captions), append(imgs, b)
	}
	schema := arrow.NewSchema([]arrow.Field{stream.ImageIDField(), stream.SplitField(), stream.CaptionsField(), stream.ImageBytesField()}, nil)
	rec := array.NewRecordBatch(schema, []arrow.Array{stream.NewStrings(ids), stream.NewStrings(splits),
		stream.NewStringLists(caps), stream.NewBinaries(imgs)}, int64(len(rows)))
	defer rec.Release()
	embedded := filepath.Join(dir, "embedded.arrows")
	streamtest.WriteFile(t, embedded, schema, stream.Options{}, rec)

	o := PrepareOptions{Key: "data_path", Where: "F:1", Split: "train", ImageRoot: dir, ModelDir: baseModel, CacheDir: filepath.Join(dir, "cache")}
	pixels := func(src string) [][]byte {
		t.Helper()
		p, err := Prepare(src, o)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		r, err := stream.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out [][]byte
		for r.Next() {
			px, err := stream.Pixels(r.Batch())
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < px.Rows(); i++ {
				out = append(out, append([]byte(nil), px.Row(i)...))
			}
		}
		return out
	}
	fromFiles, fromBytes := pixels(file), pixels(embedded)
	if len(fromFiles) != len(rows) || len(fromBytes) != len(rows) {
		t.Fatalf("%d and %d images, want %d", len(fromFiles), len(fromBytes), len(rows))
	}
	for i := range fromFiles {
		if !bytes.Equal(fromFiles[i], fromBytes[i]) {
			t.Errorf("image %d: image_bytes decoded differently from the file", i)
		}
	}
}
