package traindata

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/clipline/clipline/internal/bpe"
	"github.com/clipline/clipline/internal/config"
	"github.com/clipline/clipline/internal/dataset"
	"github.com/clipline/clipline/internal/dataset/jsonl"
	"github.com/clipline/clipline/internal/decode"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/stream/streamtest"
	"github.com/clipline/clipline/internal/tokenize"
	"github.com/clipline/clipline/internal/train"
)

// Rows with image_path and no pixels are spooled through decode.Run, so
// train's pixels are the decode stage's; a compressed input with pixels is
// spooled by copying; a spool is reused while its file is unchanged and
// made anew when the file is touched; Close keeps spools when told to (an
// interrupted run) and otherwise removes this run's.
func TestSpool(t *testing.T) {
	dir := t.TempDir()
	tutorialData(t, dir, 12)
	rows, _, err := jsonl.ReadFile(filepath.Join(dir, "train.jsonl"), jsonl.Options{ImageRoot: dir, DefaultSplit: "train"})
	if err != nil {
		t.Fatal(err)
	}
	raw, paths, ref := filepath.Join(dir, "rows.arrows"), filepath.Join(dir, "paths.arrows"), filepath.Join(dir, "ref.arrow")
	if err := dataset.Write(rows, dataset.WriteOptions{Out: raw}); err != nil {
		t.Fatal(err)
	}
	tok, err := bpe.Load(baseModel)
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := tokenize.Context(baseModel, tok, 0)
	if err != nil {
		t.Fatal(err)
	}
	geom, err := decode.Geometry(baseModel, 0)
	if err != nil {
		t.Fatal(err)
	}
	// paths: tokens and image_path, no pixels; ref: decode's pixels, zstd.
	transform := func(src string, step func(*stream.Reader) error) {
		t.Helper()
		in, err := stream.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		if err := step(in); err != nil {
			t.Fatal(err)
		}
	}
	transform(raw, func(in *stream.Reader) error {
		return tokenize.Run(in, tok, tokenize.Options{Context: ctx, Out: paths})
	})
	transform(paths, func(in *stream.Reader) error {
		return decode.Run(in, decode.Options{Geometry: geom, Out: ref, Compress: "zstd"})
	})
	var want [][]byte
	r, err := stream.Open(ref)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		px, err := stream.Pixels(r.Batch())
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < px.Rows(); i++ {
			want = append(want, append([]byte(nil), px.Row(i)...))
		}
	}
	r.Close()

	cfg := config.Default()
	cfg.OutputDir, cfg.ImageRoot, cfg.EvalStrategy = filepath.Join(dir, "out"), dir, "no"
	ro, err := train.ModelReadOptions(baseModel)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	load := func(in string) (*Sources, *train.Data) {
		t.Helper()
		log.Reset()
		s, err := Resolve(in, "", cfg, func(string) string { return "" }, nil, &log)
		if err != nil {
			t.Fatal(err)
		}
		d, _, err := s.Load(baseModel, ro)
		if err != nil {
			t.Fatalf("%s: %v\n%s", in, err, log.String())
		}
		if d.Images() != len(want) {
			t.Fatalf("%s: %d images, want %d", in, d.Images(), len(want))
		}
		for i := range want {
			if !bytes.Equal(d.Image(i), want[i]) {
				t.Fatalf("%s: image %d differs from decode's", in, i)
			}
		}
		return s, d
	}
	spools := func() []string {
		m, _ := filepath.Glob(filepath.Join(cfg.OutputDir, "cache", "train-*.arrow"))
		return m
	}

	s, _ := load(paths)
	if !strings.Contains(log.String(), "train: "+paths+" has no pixels; decoding it into ") || len(spools()) != 1 {
		t.Fatalf("decoding spool: %v\n%s", spools(), log.String())
	}
	first := spools()[0]
	s.Close(true)
	s, _ = load(paths)
	if log.String() != "train: "+paths+": reusing "+first+"\n" {
		t.Errorf("unchanged file: %q", log.String())
	}
	s.Close(true)
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(paths, later, later); err != nil {
		t.Fatal(err)
	}
	s, _ = load(paths)
	if strings.Contains(log.String(), "reusing") || len(spools()) != 2 {
		t.Errorf("touched file: spools %v\n%s", spools(), log.String())
	}
	s.Close(false)
	if got := spools(); len(got) != 1 || got[0] != first {
		t.Errorf("after Close: %v, want only %s (another run's)", got, first)
	}

	// Rows without tokens are refused before anything is decoded.
	s, err = Resolve(raw, "", cfg, func(string) string { return "" }, nil, &log)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(baseModel, ro); err == nil || !strings.Contains(err.Error(), raw+": column caption_tokens missing") || len(spools()) != 1 {
		t.Errorf("rows without tokens: %v, spools %v", err, spools())
	}
	s.Close(false)

	s, _ = load(ref)
	if !strings.Contains(log.String(), "train: spooled "+ref+" to ") || len(spools()) != 2 {
		t.Errorf("compressed file: spools %v\n%s", spools(), log.String())
	}
	s.Close(false)
}

// The pixels of a mapped input are the file's pages, not copies: each
// image lies inside a mapping of the spool (or file) in /proc/self/maps.
func TestPixelsAliasTheMap(t *testing.T) {
	if _, err := os.Stat("/proc/self/maps"); err != nil {
		t.Skipf("no /proc/self/maps here: %v", err)
	}
	dir := t.TempDir()
	d, s, _, _ := loadPrepared(t, dir, 6)
	defer s.Close(false)
	prepared, _ := filepath.Glob(filepath.Join(dir, "prepared", "*.arrow"))
	if len(prepared) != 1 {
		t.Fatalf("prepared %v", prepared)
	}
	lo, hi := mapping(t, prepared[0])
	for i := 0; i < d.Images(); i++ {
		if p := uintptr(unsafe.Pointer(unsafe.SliceData(d.Image(i)))); p < lo || p+uintptr(len(d.Image(i))) > hi {
			t.Fatalf("image %d at %#x is not inside the map of %s [%#x, %#x)", i, p, prepared[0], lo, hi)
		}
	}
}

// loadPrepared writes n tutorial images with their JSONL into dir and loads
// them as train's data_path, prepared (decoded into the spool) under
// dir/prepared, and returns the configuration and read options it used; the
// caller closes the Sources.
func loadPrepared(t *testing.T, dir string, n int) (*train.Data, *Sources, config.Config, train.ReadOptions) {
	t.Helper()
	tutorialData(t, dir, n)
	cfg := config.Default()
	cfg.DataPath, cfg.ImageRoot, cfg.OutputDir, cfg.EvalStrategy = filepath.Join(dir, "train.jsonl"), dir, filepath.Join(dir, "out"), "no"
	s, err := Resolve("", "", cfg, func(string) string { return "" }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.CacheDir = filepath.Join(dir, "prepared")
	ro, err := train.ModelReadOptions(baseModel)
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := s.Load(baseModel, ro)
	if err != nil {
		s.Close(false)
		t.Fatal(err)
	}
	return d, s, cfg, ro
}

// mapping is the address range of path's mapping in /proc/self/maps.
func mapping(t *testing.T, path string) (lo, hi uintptr) {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(maps), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || f[5] != path {
			continue
		}
		var a, b uintptr
		if _, err := fmt.Sscanf(f[0], "%x-%x", &a, &b); err != nil {
			t.Fatal(err)
		}
		return a, b
	}
	t.Fatalf("%s is not mapped:\n%s", path, maps)
	return 0, 0
}

// A directory of parts (uncompressed IPC files with pixels, as sharded
// stages write them) is mapped as it is, part by part, and reads as the
// rows of all parts in order.
func TestPartsMappedAsTheyAre(t *testing.T) {
	dir := t.TempDir()
	whole, s, cfg, ro := loadPrepared(t, dir, 8)
	defer s.Close(false)
	prepared, _ := filepath.Glob(filepath.Join(dir, "prepared", "*.arrow"))
	in, err := stream.Open(prepared[0])
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	// Two parts: the first 3 rows, then the rest.
	if !in.Next() {
		t.Fatal(in.Err())
	}
	rec, n := in.Batch(), in.Batch().NumRows()
	parts := filepath.Join(dir, "parts")
	if err := os.Mkdir(parts, 0o755); err != nil {
		t.Fatal(err)
	}
	for k, rows := range [][2]int64{{0, 3}, {3, n}} {
		part := rec.NewSlice(rows[0], rows[1])
		streamtest.WriteFile(t, filepath.Join(parts, stream.PartName(k, 2)), in.Schema(), stream.Options{}, part)
		part.Release()
	}

	var log bytes.Buffer
	cfg.DataPath = ""
	p, err := Resolve(parts, "", cfg, func(string) string { return "" }, nil, &log)
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := p.Load(baseModel, ro)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(false)
	if strings.Contains(log.String(), "spool") || d.Images() != whole.Images() || d.Pairs() != whole.Pairs() {
		t.Fatalf("parts: %d images, %d pairs (want %d, %d)\n%s", d.Images(), d.Pairs(), whole.Images(), whole.Pairs(), log.String())
	}
	for i := 0; i < d.Images(); i++ {
		if !bytes.Equal(d.Image(i), whole.Image(i)) {
			t.Fatalf("image %d differs between the parts and the whole", i)
		}
	}
}
