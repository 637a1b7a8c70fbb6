package index

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/clipline/clipline/internal/index/indextest"
	"github.com/clipline/clipline/internal/modelid"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/stream/jstest"
)

// shared holds what the tests share; TestMain removes it.
var shared string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "clipline-index-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// embedded is the real embed stream the tests share: 30 synthetic scenes
// through tokenize, decode and embed with the base model.
var embedded = sync.OnceValues(func() (string, error) { return indextest.Make(shared, 30) })

func embeddedStream(t *testing.T) string {
	t.Helper()
	path, err := embedded()
	if err != nil {
		t.Fatalf("making the embedded stream: %v", err)
	}
	return path
}

// streamRows is an embedded stream read with the stream package: what a
// bundle of it must hold.
type streamRows struct {
	ids, paths, splits, notes []string
	captions                  [][]string
	images                    stream.Vectors
	caps                      stream.VectorLists
	dim                       int
}

func readRows(t *testing.T, path string) streamRows {
	t.Helper()
	r, err := stream.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var s streamRows
	s.caps.Offsets = []int32{0}
	for r.Next() {
		rec := r.Batch()
		get := func(name string) []string {
			v, err := stream.Strings(rec, name)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		s.ids = append(s.ids, get(stream.ColImageID)...)
		s.paths = append(s.paths, get(stream.ColImagePath)...)
		s.splits = append(s.splits, get(stream.ColSplit)...)
		if stream.HasColumn(rec.Schema(), "note") {
			s.notes = append(s.notes, get("note")...)
		}
		c, err := stream.StringLists(rec, stream.ColCaptions)
		if err != nil {
			t.Fatal(err)
		}
		s.captions = append(s.captions, c...)
		img, err := stream.ImageEmbeddings(rec)
		if err != nil {
			t.Fatal(err)
		}
		s.dim = img.Width
		s.images.Width = img.Width
		s.images.Values = append(s.images.Values, img.Values...)
		ce, err := stream.CaptionEmbeddings(rec)
		if err != nil {
			t.Fatal(err)
		}
		s.caps.Width = ce.Width
		base := s.caps.Offsets[len(s.caps.Offsets)-1]
		s.caps.Values = append(s.caps.Values, ce.Values...)
		for _, o := range ce.Offsets[1:] {
			s.caps.Offsets = append(s.caps.Offsets, base+o)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

func build(t *testing.T, in, dir string, opt BuildOptions) (Manifest, error) {
	t.Helper()
	r, err := stream.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return Build(r, dir, opt)
}

func open(t *testing.T, dir string) *Bundle {
	t.Helper()
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestImages: a real embed stream's images, indexed and opened again: the
// manifest, every item in stream order, its vector bit for bit (embed's are
// unit already), RowOf, and meta.arrow as an Arrow IPC file without the
// pixels, tokens and embeddings.
func TestImages(t *testing.T) {
	in := embeddedStream(t)
	want := readRows(t, in)
	dir := filepath.Join(t.TempDir(), "out", "bundle") // the parent is made too
	args := []string{"--out", dir}
	before := time.Now().Add(-time.Second)
	var log bytes.Buffer
	m, err := build(t, in, dir, BuildOptions{Args: args, Progress: &log})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "index: 30 images from 30 rows") {
		t.Errorf("progress: %q", log.String())
	}
	hash, err := modelid.Hash(indextest.BaseModel())
	if err != nil {
		t.Fatal(err)
	}
	if m.Format != 1 || m.Kind != KindImages || m.Count != 30 || m.Dim != want.dim || m.Metric != "cosine" || m.PanelWidth < 1 {
		t.Errorf("manifest %+v", m)
	}
	if m.Model != (Model{Hash: hash, Source: indextest.BaseModel()}) {
		t.Errorf("model %+v, want hash %s and source %s", m.Model, hash, indextest.BaseModel())
	}
	if m.Created.Before(before) || m.Created.After(time.Now()) {
		t.Errorf("created %v, not during the build", m.Created)
	}
	var steps []stream.Step
	if err := json.Unmarshal(m.Provenance, &steps); err != nil {
		t.Fatalf("provenance %s: %v", m.Provenance, err)
	}
	var stages []string
	for _, s := range steps {
		stages = append(stages, s.Stage)
	}
	if !slices.Equal(stages, []string{"prepare", "tokenize", "decode", "embed", "index"}) || !slices.Equal(steps[4].Args, args) {
		t.Errorf("provenance %+v", steps)
	}

	b := open(t, dir)
	if b.Dir != dir || b.Len() != 30 || b.Gallery.Len() != 30 || b.Gallery.Dim() != want.dim || b.Report() != nil {
		t.Errorf("bundle %s: %d rows, gallery %d×%d, report %s", b.Dir, b.Len(), b.Gallery.Len(), b.Gallery.Dim(), b.Report())
	}
	if got := b.Manifest; got.Created.Equal(m.Created) {
		got.Created = m.Created
		if js1, js2 := mustJSON(t, got), mustJSON(t, m); js1 != js2 {
			t.Errorf("Open's manifest %s, Build's %s", js1, js2)
		}
	} else {
		t.Errorf("Open's created %v, Build's %v", got.Created, m.Created)
	}
	var v []float32
	for i := range 30 {
		row := int32(i)
		it := b.Item(row)
		if it.Row != row || it.ImageID != want.ids[i] || it.ImagePath != want.paths[i] || it.Split != want.splits[i] ||
			!slices.Equal(it.Captions, want.captions[i]) || it.Caption != "" {
			t.Errorf("item %d: %+v, want stream row %d: %s %s %s %q", i, it, i, want.ids[i], want.paths[i], want.splits[i], want.captions[i])
		}
		v = b.Gallery.Vector(row, v)
		if !slices.Equal(v, want.images.Row(i)) {
			t.Errorf("row %d: vector differs from the stream's image_embedding", i)
		}
		if r, ok := b.RowOf(want.ids[i]); !ok || r != row {
			t.Errorf("RowOf(%s) = %d, %v; want %d", want.ids[i], r, ok, i)
		}
	}
	if r, ok := b.RowOf("no such image"); ok {
		t.Errorf("RowOf of an unknown id: %d", r)
	}

	cols, rows := readArrowFile(t, filepath.Join(dir, MetaFile))
	if wantCols := []string{"image_id", "split", "image_path", "captions"}; !slices.Equal(cols, wantCols) || rows != 30 {
		t.Errorf("meta.arrow: %d rows of %v, want 30 of %v", rows, cols, wantCols)
	}
	if err := b.Close(); err != nil || b.Close() != nil {
		t.Errorf("Close: %v", err)
	}
}

// readArrowFile reads path as an Arrow IPC file (the random-access format:
// ARROW1 magic at both ends and a footer) with arrow-go's file reader.
func readArrowFile(t *testing.T, path string) (cols []string, rows int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("ARROW1")) || !bytes.HasSuffix(data, []byte("ARROW1")) {
		t.Fatalf("%s is not an Arrow IPC file (starts %q, ends %q)", path, data[:min(8, len(data))], data[max(0, len(data)-8):])
	}
	r, err := ipc.NewFileReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, f := range r.Schema().Fields() {
		cols = append(cols, f.Name)
	}
	for i := range r.NumRecords() {
		rec, err := r.RecordBatch(i)
		if err != nil {
			t.Fatal(err)
		}
		rows += int(rec.NumRows())
	}
	return cols, rows
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSplit: --split keeps that split's rows, in stream order; a split
// with no rows names those present.
func TestSplit(t *testing.T) {
	in := embeddedStream(t)
	want := readRows(t, in)
	dir := filepath.Join(t.TempDir(), "test")
	m, err := build(t, in, dir, BuildOptions{Split: "test"})
	if err != nil {
		t.Fatal(err)
	}
	b := open(t, dir)
	var rows []int
	for i, s := range want.splits {
		if s == "test" {
			rows = append(rows, i)
		}
	}
	if len(rows) == 0 || len(rows) == 30 || m.Count != len(rows) || b.Len() != len(rows) {
		t.Fatalf("%d test rows of 30 in the stream, the bundle has %d (manifest %d)", len(rows), b.Len(), m.Count)
	}
	for k, i := range rows {
		it := b.Item(int32(k))
		if it.ImageID != want.ids[i] || it.Split != "test" {
			t.Errorf("row %d: %+v, want stream row %d (%s)", k, it, i, want.ids[i])
		}
		if !slices.Equal(b.Gallery.Vector(int32(k), nil), want.images.Row(i)) {
			t.Errorf("row %d: vector is not stream row %d's", k, i)
		}
	}
	_, err = build(t, in, filepath.Join(t.TempDir(), "x"), BuildOptions{Split: "nope"})
	if err == nil || !strings.Contains(err.Error(), `no rows with split "nope" (splits present: test, train, val)`) {
		t.Errorf("--split nope: %v", err)
	}
}

// TestCaptions: a captions index has a row per caption, in stream order,
// with its image's id, path and split; RowOf gives an image's first.
func TestCaptions(t *testing.T) {
	in := embeddedStream(t)
	want := readRows(t, in)
	dir := filepath.Join(t.TempDir(), "caps")
	m, err := build(t, in, dir, BuildOptions{Captions: true, Split: "val"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != KindCaptions {
		t.Errorf("kind %q", m.Kind)
	}
	b := open(t, dir)
	row := int32(0)
	for i := range want.ids {
		if want.splits[i] != "val" {
			continue
		}
		first := row
		for j, c := range want.captions[i] {
			it := b.Item(row)
			if it.ImageID != want.ids[i] || it.ImagePath != want.paths[i] || it.Split != "val" || it.Caption != c || it.Captions != nil {
				t.Errorf("row %d: %+v, want image %s caption %d %q", row, it, want.ids[i], j, c)
			}
			if !slices.Equal(b.Gallery.Vector(row, nil), want.caps.Item(i, j)) {
				t.Errorf("row %d: vector is not image %s's caption %d's", row, want.ids[i], j)
			}
			row++
		}
		if r, ok := b.RowOf(want.ids[i]); !ok || r != first {
			t.Errorf("RowOf(%s) = %d, %v; want its first caption's row %d", want.ids[i], r, ok, first)
		}
	}
	if row == 0 || int(row) != b.Len() || m.Count != b.Len() {
		t.Errorf("%d val captions in the stream, %d rows in the bundle (manifest %d)", row, b.Len(), m.Count)
	}
	cols, _ := readArrowFile(t, filepath.Join(dir, MetaFile))
	if wantCols := []string{"image_id", "image_path", "split", "caption"}; !slices.Equal(cols, wantCols) {
		t.Errorf("meta.arrow columns %v, want %v", cols, wantCols)
	}
}

// unit is a unit vector of dimension 4 along axis k, scaled by s.
func unit(k int, s float32) []float32 {
	v := make([]float32, 4)
	v[k%4] = s
	return v
}

// handRows are six hand-made rows, two captions each, in batches of 4.
func handRows() []indextest.Row {
	var rows []indextest.Row
	for i := range 6 {
		rows = append(rows, indextest.Row{ID: fmt.Sprintf("img%d", i), Path: fmt.Sprintf("images/%d.png", i),
			Split: []string{"train", "test"}[i%2], Captions: []string{fmt.Sprintf("c%d.0", i), fmt.Sprintf("c%d.1", i)},
			Image: unit(i, 1), CaptionVecs: [][]float32{unit(i+1, 1), unit(i+2, 1)}})
	}
	return rows
}

// TestNormalises: vectors that are not unit are scaled to unit length (in
// float64); unit ones are kept; passed-through columns stay in meta.arrow.
func TestNormalises(t *testing.T) {
	rows := handRows()
	rows[1].Image = []float32{3, 0, 4, 0}
	rows[2].CaptionVecs[1] = []float32{0, 1e-3, 0, 0}
	in := filepath.Join(t.TempDir(), "in.arrow")
	indextest.Write(t, in, 4, 4, rows, nil)
	dir := filepath.Join(t.TempDir(), "b")
	m, err := build(t, in, dir, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Model != (Model{Hash: indextest.TestModelHash, Source: "test-model"}) {
		t.Errorf("model %+v", m.Model)
	}
	b := open(t, dir)
	if got := b.Gallery.Vector(1, nil); !slices.Equal(got, []float32{0.6, 0, 0.8, 0}) {
		t.Errorf("(3, 0, 4, 0) indexed as %v", got)
	}
	if got := b.Gallery.Vector(0, nil); !slices.Equal(got, unit(0, 1)) {
		t.Errorf("a unit vector indexed as %v", got)
	}
	cols, _ := readArrowFile(t, filepath.Join(dir, MetaFile))
	if want := []string{"image_id", "image_path", "split", "captions", "note"}; !slices.Equal(cols, want) {
		t.Errorf("meta.arrow columns %v, want %v", cols, want)
	}
	dir = filepath.Join(t.TempDir(), "c")
	if _, err := build(t, in, dir, BuildOptions{Captions: true}); err != nil {
		t.Fatal(err)
	}
	if got := open(t, dir).Gallery.Vector(5, nil); !slices.Equal(got, []float32{0, 1, 0, 0}) {
		t.Errorf("caption (0, 1e-3, 0, 0) indexed as %v", got)
	}
}

// TestBadRows: a vector without a direction, a repeated image_id or a
// stream without the model's hash fails naming the row and image; no
// bundle and no temporary directory is left.
func TestBadRows(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	for _, c := range []struct {
		name     string
		edit     func(rows []indextest.Row)
		meta     map[string]string
		captions bool
		want     string
	}{
		{"zero", func(r []indextest.Row) { r[5].Image = make([]float32, 4) },
			nil, false, "in.arrow: row 5 (image_id img5): image_embedding is all zeros"},
		{"nan", func(r []indextest.Row) { r[4].Image[2] = nan },
			nil, false, "in.arrow: row 4 (image_id img4): image_embedding value 2 is NaN"},
		{"inf caption", func(r []indextest.Row) { r[3].CaptionVecs[1][0] = inf },
			nil, true, "in.arrow: row 3 (image_id img3): caption 1: caption_embeddings value 0 is -Inf"},
		{"duplicate", func(r []indextest.Row) { r[5].ID = "img1" },
			nil, false, "in.arrow: row 5 (image_id img1): the same image_id as row 1"},
		{"no hash", func([]indextest.Row) {}, map[string]string{stream.MetaModelHash: ""},
			false, "no clipline.model_hash in the schema metadata"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows := handRows()
			c.edit(rows)
			tmp := t.TempDir()
			in := filepath.Join(tmp, "in.arrow")
			indextest.Write(t, in, 4, 4, rows, c.meta)
			out := filepath.Join(tmp, "out")
			_, err := build(t, in, filepath.Join(out, "bundle"), BuildOptions{Captions: c.captions, Faiss: true})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
			if ents, _ := os.ReadDir(out); len(ents) != 0 {
				t.Errorf("a failed build left %v", ents)
			}
		})
	}
}

// TestReplace: a bundle is replaced whole; a failed build leaves the old
// one as it was; a directory that is not a bundle, or a file, is refused
// untouched; an empty directory is used.
func TestReplace(t *testing.T) {
	tmp := t.TempDir()
	rows := handRows()
	good, bad := filepath.Join(tmp, "good.arrow"), filepath.Join(tmp, "bad.arrow")
	indextest.Write(t, good, 4, 4, rows, nil)
	rows[2].Image = make([]float32, 4)
	indextest.Write(t, bad, 4, 4, rows, nil)
	out := filepath.Join(tmp, "out")
	dir := filepath.Join(out, "bundle")
	if _, err := build(t, good, dir, BuildOptions{Split: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := build(t, bad, dir, BuildOptions{}); err == nil {
		t.Fatal("a zero vector was indexed")
	}
	if b := open(t, dir); b.Len() != 3 {
		t.Errorf("after a failed rebuild the bundle has %d rows, want the old 3", b.Len())
	}
	if _, err := build(t, good, dir, BuildOptions{Faiss: true}); err != nil {
		t.Fatal(err)
	}
	if b := open(t, dir); b.Len() != 6 {
		t.Errorf("after a rebuild the bundle has %d rows, want 6", b.Len())
	}
	if _, err := os.Stat(filepath.Join(dir, FaissFile)); err != nil {
		t.Error(err)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 1 {
		t.Errorf("%s holds %v, want only the bundle", out, ents)
	}

	other := filepath.Join(tmp, "other")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "mine.txt"), []byte("keep"), 0o644)
	file := filepath.Join(tmp, "file")
	os.WriteFile(file, []byte("keep"), 0o644)
	for target, want := range map[string]string{
		other: "is a directory that is not an index bundle (no manifest.json); refusing to replace it",
		file:  "exists and is not a directory; refusing to replace it",
	} {
		if _, err := build(t, good, target, BuildOptions{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("index onto %s: %v, want %q", target, err, want)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(other, "mine.txt")); string(got) != "keep" {
		t.Error("the refused directory changed")
	}
	empty := filepath.Join(tmp, "empty")
	os.MkdirAll(empty, 0o755)
	if _, err := build(t, good, empty, BuildOptions{}); err != nil {
		t.Errorf("index into an empty directory: %v", err)
	}
	if fi, err := os.Stat(empty); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bundle directory %v, %v; want mode 0755", fi.Mode(), err)
	}
}

// TestReport: --report is copied and served as it is; a report that is not
// JSON is refused before the stream is read.
func TestReport(t *testing.T) {
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in.arrow")
	indextest.Write(t, in, 4, 4, handRows(), nil)
	report := filepath.Join(tmp, "report.json")
	const js = `{"zero_shot": {"rsum": 1.5}, "fine_tuned": {"rsum": 3}}` + "\n"
	os.WriteFile(report, []byte(js), 0o644)
	dir := filepath.Join(tmp, "b")
	if _, err := build(t, in, dir, BuildOptions{Report: report}); err != nil {
		t.Fatal(err)
	}
	if got := open(t, dir).Report(); string(got) != js {
		t.Errorf("report %s, want %s", got, js)
	}
	os.WriteFile(report, []byte("not json"), 0o644)
	if _, err := build(t, in, filepath.Join(tmp, "c"), BuildOptions{Report: report}); err == nil || !strings.Contains(err.Error(), "report.json is not JSON") {
		t.Errorf("a bad report: %v", err)
	}
}

// TestOpenChecks: Open refuses a bundle whose parts disagree, naming the
// file.
func TestOpenChecks(t *testing.T) {
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in.arrow")
	indextest.Write(t, in, 4, 4, handRows(), nil)
	for _, c := range []struct {
		name string
		edit func(dir string)
		want string
	}{
		{"short vectors", func(dir string) {
			os.Truncate(filepath.Join(dir, VectorsFile), 4*4*5)
		}, "vectors.panels: search: 20 packed values for 6 vectors of dimension 4"},
		{"format", func(dir string) { editManifest(t, dir, func(m *Manifest) { m.Format = 2 }) },
			"manifest.json: format 2; this clipline reads format 1"},
		{"count", func(dir string) { editManifest(t, dir, func(m *Manifest) { m.Count = 7 }) },
			"meta.arrow has 6 rows, manifest.json says 7"},
		{"no meta", func(dir string) { os.Remove(filepath.Join(dir, MetaFile)) }, "meta.arrow"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "b")
			if _, err := build(t, in, dir, BuildOptions{}); err != nil {
				t.Fatal(err)
			}
			c.edit(dir)
			b, err := Open(dir)
			if err == nil {
				b.Close()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
				t.Errorf("Open: %v, want %q naming %s", err, c.want, dir)
			}
		})
	}
}

func editManifest(t *testing.T, dir string, edit func(*Manifest)) {
	t.Helper()
	path := filepath.Join(dir, ManifestFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(&m)
	if err := os.WriteFile(path, []byte(mustJSON(t, m)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOtherPanelWidth: a bundle whose vectors were packed for another
// machine's kernel (here row-major, panel width 1) opens with the vectors
// repacked in memory.
func TestOtherPanelWidth(t *testing.T) {
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in.arrow")
	rows := handRows()
	indextest.Write(t, in, 4, 4, rows, nil)
	dir := filepath.Join(tmp, "b")
	m, err := build(t, in, dir, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.PanelWidth == 1 {
		t.Skip("this machine's kernel packs one vector a panel already")
	}
	var flat []float32
	for _, r := range rows {
		flat = append(flat, r.Image...)
	}
	if err := writeFloats(filepath.Join(dir, VectorsFile), nil, flat); err != nil {
		t.Fatal(err)
	}
	editManifest(t, dir, func(m *Manifest) { m.PanelWidth = 1 })
	b := open(t, dir)
	if !b.Gallery.Repacked() {
		t.Error("a width-1 file was not repacked")
	}
	for i, r := range rows {
		if got := b.Gallery.Vector(int32(i), nil); !slices.Equal(got, r.Image) {
			t.Errorf("row %d: %v, want %v", i, got, r.Image)
		}
	}
}

// TestMetaReadByJavaScript: meta.arrow, read by the official JavaScript
// Arrow implementation (not arrow-go), holds the stream's rows in index
// order, passed-through columns included, and index's provenance.
func TestMetaReadByJavaScript(t *testing.T) {
	jstest.Require(t)
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in.arrow")
	rows := handRows()
	indextest.Write(t, in, 4, 4, rows, nil)
	for _, captions := range []bool{false, true} {
		dir := filepath.Join(tmp, fmt.Sprint(captions))
		if _, err := build(t, in, dir, BuildOptions{Split: "test", Captions: captions}); err != nil {
			t.Fatal(err)
		}
		var got struct {
			NumRows  int
			Metadata map[string]string
			Columns  map[string]struct{ Rows []any }
		}
		if err := json.Unmarshal(jstest.Read(t, filepath.Join(dir, MetaFile)), &got); err != nil {
			t.Fatal(err)
		}
		want := map[string][]any{}
		add := func(col string, v any) { want[col] = append(want[col], v) }
		for i, r := range rows {
			if r.Split != "test" {
				continue
			}
			if !captions {
				add("image_id", r.ID)
				add("image_path", r.Path)
				add("split", r.Split)
				add("captions", []any{r.Captions[0], r.Captions[1]})
				add("note", fmt.Sprintf("note %d", i))
				continue
			}
			for _, c := range r.Captions {
				add("image_id", r.ID)
				add("image_path", r.Path)
				add("split", r.Split)
				add("caption", c)
			}
		}
		if got.NumRows != len(want["image_id"]) || len(got.Columns) != len(want) {
			t.Errorf("captions=%v: JS reads %d rows of %d columns, want %d of %d", captions, got.NumRows, len(got.Columns), len(want["image_id"]), len(want))
		}
		for col, w := range want {
			if g := got.Columns[col].Rows; mustJSON(t, g) != mustJSON(t, w) {
				t.Errorf("captions=%v: column %s: JS reads %v, want %v", captions, col, g, w)
			}
		}
		var steps []stream.Step
		if err := json.Unmarshal([]byte(got.Metadata[stream.MetaProvenance]), &steps); err != nil || steps[len(steps)-1].Stage != "index" {
			t.Errorf("captions=%v: provenance %q (%v)", captions, got.Metadata[stream.MetaProvenance], err)
		}
	}
}

// randomRows are n rows of random unit vectors of dimension dim (seed 1),
// and those vectors, row-major.
func randomRows(n, dim int) ([]indextest.Row, []float32) {
	rng := rand.New(rand.NewPCG(1, 1))
	var rows []indextest.Row
	var all []float32
	for i := range n {
		v := make([]float32, dim)
		var ss float64
		for k := range v {
			v[k] = float32(rng.NormFloat64())
			ss += float64(v[k]) * float64(v[k])
		}
		for k := range v {
			v[k] = float32(float64(v[k]) / math.Sqrt(ss))
		}
		all = append(all, v...)
		rows = append(rows, indextest.Row{ID: fmt.Sprint(i), Path: "p", Split: "test", Image: v})
	}
	return rows, all
}

// TestChunks: an index of more vectors than are packed at a time holds
// every one, in order.
func TestChunks(t *testing.T) {
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in.arrow")
	n := 2*chunkRows + 5
	rows, vecs := randomRows(n, 8)
	indextest.Write(t, in, 8, 999, rows, nil)
	dir := filepath.Join(tmp, "b")
	if _, err := build(t, in, dir, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	b := open(t, dir)
	if b.Len() != n {
		t.Fatalf("%d rows, want %d", b.Len(), n)
	}
	var v []float32
	for i := range n {
		if v = b.Gallery.Vector(int32(i), v); !slices.Equal(v, vecs[i*8:(i+1)*8]) {
			t.Fatalf("row %d: %v, want %v", i, v, vecs[i*8:(i+1)*8])
		}
		if it := b.Item(int32(i)); it.ImageID != fmt.Sprint(i) {
			t.Fatalf("row %d: %+v", i, it)
		}
	}
}

// TestImageBytes: an images bundle of a stream with image_bytes holds each
// row's bytes (mapped from meta.arrow), in index order across batches; a
// captions bundle and a bundle without the column hold none.
func TestImageBytes(t *testing.T) {
	rows := handRows()
	for i := range rows {
		rows[i].Bytes = bytes.Repeat([]byte{byte(i)}, 3+i*1000)
	}
	in := filepath.Join(t.TempDir(), "in.arrow")
	indextest.Write(t, in, 4, 4, rows, nil)
	dir := filepath.Join(t.TempDir(), "b")
	if _, err := build(t, in, dir, BuildOptions{Split: "test"}); err != nil {
		t.Fatal(err)
	}
	b := open(t, dir)
	for r := range int32(b.Len()) {
		want := rows[2*r+1].Bytes // the test rows: 1, 3, 5
		if got := b.ImageBytes(r); !bytes.Equal(got, want) || b.Item(r).ImageID != rows[2*r+1].ID {
			t.Errorf("row %d (%s): %d bytes, want %d", r, b.Item(r).ImageID, len(got), len(want))
		}
	}
	caps := filepath.Join(t.TempDir(), "c")
	if _, err := build(t, in, caps, BuildOptions{Captions: true}); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(t.TempDir(), "p")
	indextest.Write(t, in, 4, 4, handRows(), nil)
	if _, err := build(t, in, plain, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	if open(t, caps).ImageBytes(0) != nil || open(t, plain).ImageBytes(0) != nil {
		t.Error("image bytes in a captions bundle or one without image_bytes")
	}
}
