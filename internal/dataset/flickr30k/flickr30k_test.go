package flickr30k

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/dataset"
	"github.com/clipline/clipline/internal/fetch"
)

// A miniature Flickr30k: five images, Karpathy-style splits, captions with
// commas and quotes (the CSV must quote them; raw is a JSON list).
var mini = []struct {
	file, split string
	caps        []string
}{
	{"1000092795.jpg", "train", []string{"Two young guys with shaggy hair look at their hands.", `A "quoted" man, with commas, outside.`}},
	{"10002456.jpg", "train", []string{"Several men in hard hats are operating a giant pulley system."}},
	{"1000268201.jpg", "val", []string{"A child in a pink dress is climbing up a set of stairs."}},
	{"1000344755.jpg", "test", []string{"Someone in a blue shirt and hat is standing on stairs.", "A man in a blue shirt stands on a ladder."}},
	{"1000366164.jpg", "restval", []string{"Café crème, naïve façade."}},
}

func wantRows(imgDir string) []dataset.Row {
	var out []dataset.Row
	for _, m := range mini {
		split := m.split
		if split == "restval" {
			split = "train"
		}
		out = append(out, dataset.Row{
			ImageID: strings.TrimSuffix(m.file, ".jpg"), Split: split,
			ImagePath: filepath.Join(imgDir, m.file), Captions: m.caps,
		})
	}
	return out
}

func karpathyJSON(t *testing.T) []byte {
	type sent struct {
		Tokens []string `json:"tokens"`
		Raw    string   `json:"raw"`
		ImgID  int      `json:"imgid"`
		SentID int      `json:"sentid"`
	}
	type img struct {
		SentIDs   []int  `json:"sentids"`
		ImgID     int    `json:"imgid"`
		Sentences []sent `json:"sentences"`
		Split     string `json:"split"`
		Filename  string `json:"filename"`
	}
	var doc struct {
		Images  []img  `json:"images"`
		Dataset string `json:"dataset"`
	}
	doc.Dataset = "flickr30k"
	sid := 0
	for i, m := range mini {
		im := img{ImgID: i, Split: m.split, Filename: m.file}
		for _, c := range m.caps {
			im.Sentences = append(im.Sentences, sent{Tokens: strings.Fields(strings.ToLower(c)), Raw: c, ImgID: i, SentID: sid})
			im.SentIDs = append(im.SentIDs, sid)
			sid++
		}
		doc.Images = append(doc.Images, im)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mirrorCSV writes the nlphuji layout; columns deliberately not in the
// order the readers might assume.
func mirrorCSV(t *testing.T) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"raw", "sentids", "split", "filename", "img_id"})
	sid := 0
	for i, m := range mini {
		raw, _ := json.Marshal(m.caps)
		var ids []int
		for range m.caps {
			ids = append(ids, sid)
			sid++
		}
		sids, _ := json.Marshal(ids)
		w.Write([]string{string(raw), string(sids), m.split, m.file, string(rune('0' + i))})
	}
	w.Flush()
	return buf.Bytes()
}

func writeImages(t *testing.T, dir string) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	for _, m := range mini {
		if err := os.WriteFile(filepath.Join(dir, m.file), []byte("jpeg "+m.file), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConvertKarpathy(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, KarpathyFile), karpathyJSON(t), 0o644)
	writeImages(t, filepath.Join(dir, "flickr30k-images"))
	rows, st, err := Convert(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rows, wantRows(filepath.Join(dir, "flickr30k-images"))) {
		t.Fatalf("rows\n%+v", rows)
	}
	if filepath.Base(st.Annotations) != KarpathyFile {
		t.Fatalf("read %s", st.Annotations)
	}
}

func TestConvertCSV(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, CSVFile), append([]byte("\ufeff"), mirrorCSV(t)...), 0o644)
	writeImages(t, dir) // images next to the CSV this time
	rows, _, err := Convert(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rows, wantRows(dir)) {
		t.Fatalf("rows\n%+v", rows)
	}
	// Both formats of the same data agree.
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, "k.json"), karpathyJSON(t), 0o644)
	rows2, _, err := Convert(dir2, Options{Annotations: filepath.Join(dir2, "k.json"), ImageDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rows, rows2) {
		t.Fatal("CSV and Karpathy conversions differ")
	}
}

func TestMissingImages(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, CSVFile), mirrorCSV(t), 0o644)
	writeImages(t, filepath.Join(dir, "images"))
	os.Remove(filepath.Join(dir, "images", mini[2].file))
	_, _, err := Convert(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), mini[2].file) || !strings.Contains(err.Error(), "--skip-missing") {
		t.Fatalf("got %v", err)
	}
	rows, st, err := Convert(dir, Options{SkipMissing: true})
	if err != nil || len(rows) != 4 || st.Missing != 1 {
		t.Fatalf("skip-missing: %d rows, %+v, %v", len(rows), st, err)
	}
	// No image at all where the first entry should be.
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, CSVFile), mirrorCSV(t), 0o644)
	if _, _, err := Convert(empty, Options{}); err == nil || !strings.Contains(err.Error(), "--image-root") {
		t.Fatalf("got %v", err)
	}
}

func TestBadAnnotations(t *testing.T) {
	cases := map[string]struct{ name, text, want string }{
		"no files":    {"", "", "neither"},
		"empty csv":   {CSVFile, "", "empty"},
		"header only": {CSVFile, "raw,sentids,split,filename,img_id\n", "no images"},
		"no column":   {CSVFile, "caption,split\nx,train\n", `no "raw" column`},
		"raw not json": {CSVFile, "raw,split,filename\n\"[oops\",train,a.jpg\n",
			":2: column raw is not a JSON list"},
		"no captions":  {CSVFile, "raw,split,filename\n[],train,a.jpg\n", "no captions"},
		"escape":       {CSVFile, "raw,split,filename\n\"[\"\"x\"\"]\",train,../a.jpg\n", "not a relative path"},
		"json broken":  {KarpathyFile, `{"images": [`, "malformed JSON"},
		"json empty":   {KarpathyFile, "  ", "empty"},
		"json no list": {KarpathyFile, `{"dataset": "x"}`, `no "images"`},
		"json nosplit": {KarpathyFile, `{"images": [{"filename": "a.jpg", "sentences": [{"raw": "x"}]}]}`, "image 1: a.jpg: empty split"},
	}
	for name, c := range cases {
		dir := t.TempDir()
		if c.name != "" {
			os.WriteFile(filepath.Join(dir, c.name), []byte(c.text), 0o644)
		}
		_, _, err := Convert(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want %q, got %v", name, c.want, err)
		}
	}
}

// miniMirror builds the mirror's two files in memory.
func miniMirror(t *testing.T, extra func(*zip.Writer)) (csvData, zipData []byte) {
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	zw.Create(ImagesFolder + "/")
	for _, m := range mini {
		w, _ := zw.Create(ImagesFolder + "/" + m.file)
		w.Write(bytes.Repeat([]byte(m.file), 2000)) // compressible, > 1 block
	}
	w, _ := zw.Create("__MACOSX/" + ImagesFolder + "/._" + mini[0].file)
	w.Write([]byte("resource fork"))
	if extra != nil {
		extra(zw)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return mirrorCSV(t), zbuf.Bytes()
}

type mirrorServer struct {
	mu    sync.Mutex
	files map[string][]byte
	log   []string
}

func (s *mirrorServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.log = append(s.log, r.URL.Path+" "+r.Header.Get("Range"))
	s.mu.Unlock()
	name, ok := strings.CutPrefix(r.URL.Path, "/datasets/nlphuji/flickr30k/resolve/main/")
	data, found := s.files[name]
	if !ok || !found {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

func TestDownloadMiniMirror(t *testing.T) {
	csvData, zipData := miniMirror(t, nil)
	srv := &mirrorServer{files: map[string][]byte{CSVFile: csvData, ZipFile: zipData}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	cache := t.TempDir()
	// An interrupted earlier download left half the zip.
	os.WriteFile(filepath.Join(cache, ZipFile+".part"), zipData[:len(zipData)/2], 0o644)
	var progress bytes.Buffer
	opts := DownloadOptions{
		BaseURL:  ts.URL + "/datasets/nlphuji/flickr30k/resolve/main",
		CacheDir: cache,
		Fetch:    fetch.Options{Retries: -1, Progress: &progress},
		Log:      &progress,
	}
	dir, err := Download(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	rows, st, err := Convert(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	imgDir := filepath.Join(cache, "images", ImagesFolder)
	if st.ImageDir != imgDir || !reflect.DeepEqual(rows, wantRows(imgDir)) {
		t.Fatalf("image dir %s, rows %+v", st.ImageDir, rows)
	}
	got, _ := os.ReadFile(rows[0].ImagePath)
	if !bytes.Equal(got, bytes.Repeat([]byte(mini[0].file), 2000)) {
		t.Fatal("unpacked image differs")
	}
	if _, err := os.Stat(filepath.Join(cache, ZipFile)); !os.IsNotExist(err) {
		t.Fatal("zip kept after unpacking")
	}
	if _, err := os.Stat(filepath.Join(cache, "images", "__MACOSX")); !os.IsNotExist(err) {
		t.Fatal("__MACOSX unpacked")
	}
	wantZipRange := "bytes=" + itoa(len(zipData)/2) + "-"
	if !containsLine(srv.log, ZipFile+" "+wantZipRange) {
		t.Fatalf("zip not resumed with %s: %q", wantZipRange, srv.log)
	}
	if !strings.Contains(progress.String(), "100.0%") {
		t.Fatalf("no progress: %q", progress.String())
	}
	// A second run finds everything in the cache: no requests.
	n := len(srv.log)
	if _, err := Download(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if len(srv.log) != n {
		t.Fatalf("second run requested %q", srv.log[n:])
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func containsLine(log []string, s string) bool {
	for _, l := range log {
		if strings.HasSuffix(l, s) {
			return true
		}
	}
	return false
}

func TestDownloadErrors(t *testing.T) {
	csvData, zipData := miniMirror(t, nil)
	srv := &mirrorServer{files: map[string][]byte{CSVFile: csvData}} // no zip
	ts := httptest.NewServer(srv)
	defer ts.Close()
	base := ts.URL + "/datasets/nlphuji/flickr30k/resolve/main"
	_, err := Download(context.Background(), DownloadOptions{BaseURL: base, CacheDir: t.TempDir(), Fetch: fetch.Options{Retries: -1}})
	if err == nil || !strings.Contains(err.Error(), base+"/"+ZipFile) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("got %v", err)
	}
	// A truncated zip is refused by the size check and never unpacked.
	srv.files[ZipFile] = zipData
	trunc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ZipFile) {
			w.Header().Set("Content-Length", itoa(len(zipData)))
			w.Write(zipData[:100])
			return
		}
		srv.ServeHTTP(w, r)
	}))
	defer trunc.Close()
	cache := t.TempDir()
	_, err = Download(context.Background(), DownloadOptions{BaseURL: trunc.URL + "/datasets/nlphuji/flickr30k/resolve/main", CacheDir: cache, Fetch: fetch.Options{Retries: -1}})
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(cache, "images")); !os.IsNotExist(err) {
		t.Fatal("images folder created from a truncated zip")
	}
}

func TestUnzipRefusesEscapes(t *testing.T) {
	for name, add := range map[string]func(*zip.Writer){
		"dotdot": func(zw *zip.Writer) { w, _ := zw.Create("../evil.txt"); w.Write([]byte("x")) },
		"nested": func(zw *zip.Writer) { w, _ := zw.Create("flickr30k-images/../../evil.txt"); w.Write([]byte("x")) },
		"abs":    func(zw *zip.Writer) { w, _ := zw.Create("/tmp/evil.txt"); w.Write([]byte("x")) },
		"backslash": func(zw *zip.Writer) {
			w, _ := zw.Create(`..\evil.txt`)
			w.Write([]byte("x"))
		},
		"symlink": func(zw *zip.Writer) {
			h := &zip.FileHeader{Name: "flickr30k-images/link.jpg"}
			h.SetMode(os.ModeSymlink | 0o777)
			w, _ := zw.CreateHeader(h)
			w.Write([]byte("/etc/passwd"))
		},
	} {
		_, zipData := miniMirror(t, add)
		root := t.TempDir()
		zp := filepath.Join(root, "x.zip")
		os.WriteFile(zp, zipData, 0o644)
		dest := filepath.Join(root, "out", "deeper")
		err := Unzip(context.Background(), zp, dest, nil)
		if err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Errorf("%s: got %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(root, "out", "evil.txt")); err == nil {
			t.Errorf("%s: file written outside", name)
		}
	}
}

func TestIsKarpathy(t *testing.T) {
	if !IsKarpathy(map[string]int{"train": 29000, "val": 1014, "test": 1000}) || IsKarpathy(map[string]int{"train": 5}) {
		t.Fatal("IsKarpathy")
	}
}
