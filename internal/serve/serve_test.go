package serve

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image/jpeg"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clipline/clipline/clip"
	"github.com/clipline/clipline/internal/index"
	"github.com/clipline/clipline/internal/index/indextest"
	"github.com/clipline/clipline/internal/modelid"
	"github.com/clipline/clipline/internal/stream"
)

// The shared fixture: one embedded stream of synthetic scenes (base model)
// and its bundles, made once.
var fix struct {
	once            sync.Once
	err             error
	dir, stream     string
	images, caps    string // bundles: all rows; one row per caption
	model           *clip.Model
	hash            string
	firstID, second string // two image_ids of the test split
}

const fixImages = 40

func fixture(t *testing.T) {
	t.Helper()
	fix.once.Do(func() {
		fix.err = func() error {
			dir, err := os.MkdirTemp("", "clipline-serve-test-")
			if err != nil {
				return err
			}
			fix.dir = dir
			if fix.stream, err = indextest.Make(dir, fixImages); err != nil {
				return err
			}
			fix.images, fix.caps = filepath.Join(dir, "images.idx"), filepath.Join(dir, "captions.idx")
			if err := build(fix.stream, fix.images, index.BuildOptions{}); err != nil {
				return err
			}
			if err := build(fix.stream, fix.caps, index.BuildOptions{Captions: true}); err != nil {
				return err
			}
			if fix.model, err = clip.Load(indextest.BaseModel(), clip.WithBatchSize(9)); err != nil {
				return err
			}
			fix.hash, err = modelid.Hash(indextest.BaseModel())
			return err
		}()
	})
	if fix.err != nil {
		t.Fatal(fix.err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fix.dir != "" {
		os.RemoveAll(fix.dir)
	}
	if fix.model != nil {
		fix.model.Close()
	}
	os.Exit(code)
}

func build(streamPath, dir string, o index.BuildOptions) error {
	in, err := stream.Open(streamPath)
	if err != nil {
		return err
	}
	defer in.Close()
	_, err = index.Build(in, dir, o)
	return err
}

// options are a test server's defaults over the fixture.
func options(enc Encoder) Options {
	if enc == nil {
		enc = fix.model
	}
	return Options{Index: fix.images, Model: Model{Enc: enc, Hash: fix.hash, Source: "base"},
		MaxUpload: 1 << 20, MaxPixels: 1 << 20, Timeout: 20 * time.Second, Queue: 16,
		BatchWindow: time.Millisecond, MaxBatch: 8, ThumbCache: 1 << 20}
}

// server starts a test server; change o before.
func server(t *testing.T, o Options) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts
}

// call sends a request and decodes the JSON answer into out (when not
// nil); it returns the status and the raw body.
func call(t *testing.T, method, url, ctype string, body io.Reader, out any, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil && res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, raw)
		}
	}
	return res.StatusCode, string(raw)
}

func searchJSON(t *testing.T, url string, req any, out *Response) (int, string) {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if out == nil {
		return call(t, "POST", url+"/v1/search", "application/json", bytes.NewReader(b), nil)
	}
	return call(t, "POST", url+"/v1/search", "application/json", bytes.NewReader(b), out)
}

func upload(t *testing.T, url string, data []byte) (int, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", "query.png")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	return call(t, "POST", url, mw.FormDataContentType(), &body, nil)
}

// wantError checks a status and that the body is {"error": ...} holding
// each of the words.
func wantError(t *testing.T, what string, code int, body string, want int, words ...string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Errorf("%s: body %q is not a JSON error", what, body)
	}
	if code != want {
		t.Errorf("%s: status %d (%s), want %d", what, code, e.Error, want)
	}
	for _, w := range words {
		if !strings.Contains(e.Error, w) {
			t.Errorf("%s: error %q does not say %q", what, e.Error, w)
		}
	}
}

// items are the fixture's images bundle rows.
func items(t *testing.T) []index.Item {
	t.Helper()
	b, err := index.Open(fix.images)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var out []index.Item
	for r := range int32(b.Len()) {
		out = append(out, b.Item(r))
	}
	return out
}

func TestSearchBasics(t *testing.T) {
	fixture(t)
	_, ts := server(t, options(nil))
	its := items(t)
	caption := its[3].Captions[0]

	var text Response
	if code, body := call(t, "POST", ts.URL+"/search/text?query="+urlq(caption)+"&top_k=5", "", nil, &text); code != 200 {
		t.Fatalf("search/text: %d %s", code, body)
	}
	if len(text.Results) != 5 || text.Total != fixImages {
		t.Fatalf("%d results of %d", len(text.Results), text.Total)
	}
	for i, r := range text.Results {
		if r.Rank != i+1 || r.ImageID == "" || r.ImagePath == "" || len(r.Captions) == 0 {
			t.Errorf("result %d: %+v", i, r)
		}
		if i > 0 && !(r.Score <= text.Results[i-1].Score) {
			t.Errorf("result %d: score %v after %v", i, r.Score, text.Results[i-1].Score)
		}
	}
	if len(text.Relevant) == 0 || text.Relevant[0] != its[3].ImageID || text.FirstRelevantRank["results"] < 1 {
		t.Errorf("relevant %v, first relevant rank %v", text.Relevant, text.FirstRelevantRank)
	}
	// GET answers the same; the JSON form too.
	var get, js Response
	call(t, "GET", ts.URL+"/search/text?query="+urlq(caption)+"&top_k=5", "", nil, &get)
	searchJSON(t, ts.URL, Request{Text: caption, TopK: ptr(5)}, &js)
	if !sameResults(get.Results, text.Results) || !sameResults(js.Results, text.Results) {
		t.Errorf("GET or /v1/search differ from POST /search/text:\n%v\n%v\n%v", get.Results, js.Results, text.Results)
	}
	if js.Timings.Encode <= 0 || js.Timings.Total <= 0 {
		t.Errorf("timings %+v", js.Timings)
	}

	// offset pages on; a split filter keeps that split only.
	var page Response
	searchJSON(t, ts.URL, Request{Text: caption, TopK: ptr(3), Offset: 2}, &page)
	if !sameResults(page.Results, text.Results[2:5]) {
		t.Errorf("offset 2: %v, want %v", page.Results, text.Results[2:5])
	}
	var test Response
	searchJSON(t, ts.URL, Request{Text: caption, TopK: ptr(100), Split: "test"}, &test)
	if test.Total == 0 || len(test.Results) != test.Total {
		t.Errorf("split test: %d results of %d", len(test.Results), test.Total)
	}
	for _, r := range test.Results {
		if r.Split != "test" {
			t.Errorf("split test: %+v", r)
		}
	}

	// More like this: the image itself first, at cosine 1.
	var like Response
	searchJSON(t, ts.URL, Request{ImageID: its[5].ImageID, TopK: ptr(3)}, &like)
	if len(like.Results) != 3 || like.Results[0].ImageID != its[5].ImageID || !(like.Results[0].Score > 0.9999) {
		t.Errorf("more like %s: %+v", its[5].ImageID, like.Results)
	}
	// An upload of the image file finds it first too, as the decode stage
	// made its vector from the same file.
	data, err := os.ReadFile(its[5].ImagePath)
	if err != nil {
		t.Fatal(err)
	}
	var up Response
	code, body := upload(t, ts.URL+"/search/image?top_k=3", data)
	if json.Unmarshal([]byte(body), &up); code != 200 || len(up.Results) == 0 || up.Results[0].ImageID != its[5].ImageID || up.Results[0].Score != like.Results[0].Score {
		t.Errorf("upload of %s: %d %s; want it first with score %v", its[5].ImagePath, code, body, like.Results[0].Score)
	}
	var b64 Response
	searchJSON(t, ts.URL, Request{Image: base64.StdEncoding.EncodeToString(data), TopK: ptr(3)}, &b64)
	var dataURL Response
	searchJSON(t, ts.URL, Request{Image: "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(data), TopK: ptr(3)}, &dataURL)
	if !sameResults(b64.Results, up.Results) || !sameResults(dataURL.Results, up.Results) {
		t.Errorf("base64 image: %v, as a data URL %v, upload %v", b64.Results, dataURL.Results, up.Results)
	}

	// Weighted terms: text minus itself cancels; text plus an image mixes.
	code, body = searchJSON(t, ts.URL, Request{Terms: []Term{{Text: caption}, {Text: caption, Weight: ptr(-1.0)}}}, nil)
	wantError(t, "cancelling terms", code, body, 400, "cancel")
	var mix Response
	if code, body := searchJSON(t, ts.URL, Request{Text: caption, Terms: []Term{{ImageID: its[5].ImageID, Weight: ptr(0.5)}}, TopK: ptr(fixImages)}, &mix); code != 200 || len(mix.Results) != fixImages {
		t.Errorf("mixed terms: %d %s", code, body)
	}
}

func urlq(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "%", "%25"), " ", "%20") }

func ptr[T any](v T) *T { return &v }

func sameResults(a, b []Result) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ImageID != b[i].ImageID || a[i].Score != b[i].Score || a[i].Rank != b[i].Rank {
			return false
		}
	}
	return true
}

func TestImagesEndpoint(t *testing.T) {
	fixture(t)
	s, ts := server(t, options(nil))
	its := items(t)
	want, err := os.ReadFile(its[0].ImagePath)
	if err != nil {
		t.Fatal(err)
	}
	code, body := call(t, "GET", ts.URL+"/v1/images/"+its[0].ImageID, "", nil, nil)
	if code != 200 || body != string(want) {
		t.Errorf("image %s: %d, %d bytes; want the file's %d", its[0].ImageID, code, len(body), len(want))
	}
	for range 2 {
		code, body = call(t, "GET", ts.URL+"/v1/images/"+its[0].ImageID+"?w=16", "", nil, nil)
		cfg, err := jpeg.DecodeConfig(strings.NewReader(body))
		if code != 200 || err != nil || cfg.Width != 16 {
			t.Errorf("thumbnail: %d, %v, %+v", code, err, cfg)
		}
	}
	if n, _ := s.thumbs.len(); n != 1 {
		t.Errorf("%d thumbnails cached, want 1", n)
	}
	code, body = call(t, "GET", ts.URL+"/v1/images/"+its[0].ImageID+"?w=0", "", nil, nil)
	wantError(t, "w=0", code, body, 400, "width")

	for _, p := range []string{
		"/v1/images/no-such-id",
		"/v1/images/" + urlq(its[0].ImagePath),
		"/v1/images/..%2F..%2Fetc%2Fpasswd",
		"/v1/images/../../etc/passwd",
		"/v1/images/%2e%2e/%2e%2e/etc/passwd",
		"/v1/images/.%2e",
		"/v1/images//etc/passwd",
		"/v1/nope",
	} {
		code, body := call(t, "GET", ts.URL+p, "", nil, nil)
		wantError(t, p, code, body, 404)
	}
}

func TestInfoAndHealth(t *testing.T) {
	fixture(t)
	_, ts := server(t, options(nil))
	var in Info
	if code, body := call(t, "GET", ts.URL+"/v1/info", "", nil, &in); code != 200 {
		t.Fatalf("info: %d %s", code, body)
	}
	if in.Index.Count != fixImages || in.Index.Dim != fix.model.Dim() || in.Model.Hash != fix.hash || in.Index.Splits["test"] == 0 {
		t.Errorf("info %+v", in)
	}
	if code, body := call(t, "GET", ts.URL+"/healthz", "", nil, nil); code != 200 || !strings.Contains(body, "ok") {
		t.Errorf("healthz: %d %s", code, body)
	}
	code, body := call(t, "GET", ts.URL+"/metrics", "", nil, nil)
	if code != 200 || !strings.Contains(body, `clipline_serve_requests_total{code="200",endpoint="GET /v1/info"} 1`) {
		t.Errorf("metrics: %d\n%s", code, body)
	}
}

// TestBadInput: each bad request gets its 4xx and a JSON error saying what
// is wrong.
func TestBadInput(t *testing.T) {
	fixture(t)
	o := options(nil)
	o.MaxUpload = 10000
	o.MaxPixels = 300 * 300
	_, ts := server(t, o)
	its := items(t)
	png, err := os.ReadFile(its[0].ImagePath)
	if err != nil {
		t.Fatal(err)
	}
	if len(png) > 10000 {
		t.Fatalf("the fixture's image is %d bytes, over the test's --max-upload", len(png))
	}
	for _, c := range []struct {
		what, method, path string
		code               int
		words              []string
	}{
		{"missing query", "POST", "/search/text", 400, []string{"missing query"}},
		{"empty query", "GET", "/search/text?query=", 400, []string{"missing query"}},
		{"top_k 0", "POST", "/search/text?query=a&top_k=0", 400, []string{"top_k", "1 to 1000"}},
		{"top_k 1001", "POST", "/search/text?query=a&top_k=1001", 400, []string{"top_k", "1 to 1000"}},
		{"top_k x", "POST", "/search/text?query=a&top_k=x", 400, []string{"top_k", "integer"}},
		{"negative offset", "POST", "/search/text?query=a&offset=-1", 400, []string{"offset"}},
		{"unknown split", "POST", "/search/text?query=a&split=nope", 400, []string{"split", "test"}},
		{"no file", "POST", "/search/image", 400, []string{"multipart"}},
		{"wrong method", "DELETE", "/v1/search", 405, []string{"POST"}},
	} {
		code, body := call(t, c.method, ts.URL+c.path, "", nil, nil)
		wantError(t, c.what, code, body, c.code, c.words...)
	}
	for _, c := range []struct {
		what  string
		req   string
		code  int
		words []string
	}{
		{"empty request", `{}`, 400, []string{"missing query"}},
		{"not JSON", `text=a`, 400, []string{"JSON"}},
		{"unknown field", `{"text": "a", "topk": 3}`, 400, []string{"topk"}},
		{"top_k 0", `{"text": "a", "top_k": 0}`, 400, []string{"top_k"}},
		{"top_k 1001", `{"text": "a", "top_k": 1001}`, 400, []string{"top_k"}},
		{"unknown image_id", `{"image_id": "nope"}`, 404, []string{"nope"}},
		{"two kinds in a term", `{"terms": [{"text": "a", "image_id": "b"}]}`, 400, []string{"exactly one"}},
		{"zero weight", `{"terms": [{"text": "a", "weight": 0}]}`, 400, []string{"weight"}},
		{"bad base64", `{"image": "!!!"}`, 400, []string{"base64"}},
		{"non-image base64", `{"image": "` + base64.StdEncoding.EncodeToString([]byte("hello, not an image")) + `"}`, 415, []string{"not an image"}},
		{"oversized base64", `{"image": "` + base64.StdEncoding.EncodeToString(make([]byte, 12000)) + `"}`, 413, []string{"max-upload"}},
		{"captions without a captions index", `{"text": "a", "target": "captions"}`, 400, []string{"--captions-index"}},
		{"bad target", `{"text": "a", "target": "videos"}`, 400, []string{"target"}},
	} {
		code, body := call(t, "POST", ts.URL+"/v1/search", "application/json", strings.NewReader(c.req), nil)
		wantError(t, c.what, code, body, c.code, c.words...)
	}

	code, body := upload(t, ts.URL+"/search/image", []byte("hello, not an image"))
	wantError(t, "non-image upload", code, body, 415, "not an image")
	code, body = upload(t, ts.URL+"/search/image", append(png, make([]byte, 12000)...))
	wantError(t, "upload over --max-upload", code, body, 413, "max-upload")
	code, body = upload(t, ts.URL+"/search/image", pngHeader(t, 20000, 20000))
	wantError(t, "PNG bomb", code, body, 413, "20000x20000", "max-pixels")
	code, body = upload(t, ts.URL+"/search/image", pngHeader(t, 50, 50))
	wantError(t, "a PNG with a header and no data", code, body, 400, "decoded")
	code, body = upload(t, ts.URL+"/search/image", png[:len(png)/2])
	wantError(t, "a PNG cut short", code, body, 400)
}

// pngHeader is a PNG of w×h pixels as far as its header goes: the
// signature and IHDR, no image data. Decoding it fails; reading its
// header (image.DecodeConfig) succeeds.
func pngHeader(t *testing.T, w, h uint32) []byte {
	t.Helper()
	ihdr := []byte("IHDR")
	ihdr = fmt.Appendf(ihdr, "%c%c%c%c%c%c%c%c", byte(w>>24), byte(w>>16), byte(w>>8), byte(w), byte(h>>24), byte(h>>16), byte(h>>8), byte(h))
	ihdr = append(ihdr, 8, 2, 0, 0, 0) // 8-bit RGB, deflate, no filter, no interlace
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	b.Write([]byte{0, 0, 0, 13})
	b.Write(ihdr)
	c := crc32.ChecksumIEEE(ihdr)
	b.Write([]byte{byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)})
	return b.Bytes()
}

func TestToken(t *testing.T) {
	fixture(t)
	o := options(nil)
	o.Token = "s3cret"
	_, ts := server(t, o)
	for _, c := range []struct {
		path string
		hdr  []string
		code int
	}{
		{"/v1/info", nil, 401},
		{"/v1/info", []string{"Authorization", "Bearer wrong"}, 401},
		{"/v1/info", []string{"Authorization", "s3cret"}, 401},
		{"/search/text?query=a", []string{"Authorization", "Bearer s3cre"}, 401},
		{"/metrics", nil, 401},
		{"/v1/images/x", nil, 401},
		{"/v1/info", []string{"Authorization", "Bearer s3cret"}, 200},
		{"/healthz", nil, 200},
	} {
		code, body := call(t, "GET", ts.URL+c.path, "", nil, nil, c.hdr...)
		if c.code != 200 {
			wantError(t, fmt.Sprintf("%s %v", c.path, c.hdr), code, body, c.code, "token")
		} else if code != 200 {
			t.Errorf("%s %v: %d %s", c.path, c.hdr, code, body)
		}
	}
}

func TestModelCheck(t *testing.T) {
	fixture(t)
	o := options(nil)
	o.Model.Hash, o.Model.Source = "sha256:0123", "other-model"
	_, err := New(o)
	if err == nil || !strings.Contains(err.Error(), "other-model") || !strings.Contains(err.Error(), "sha256:0123") ||
		!strings.Contains(err.Error(), fix.hash) || !strings.Contains(err.Error(), indextest.BaseModel()) {
		t.Errorf("a model of another hash: %v", err)
	}
	o = options(nil)
	o.Index = fix.caps
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "captions index") {
		t.Errorf("a captions bundle as --index: %v", err)
	}
}

// TestImageRoot: relative image paths resolve against the --image-root
// that decode was given, as recorded in the bundle's provenance (the last
// decode step's, in either flag form), else the working directory.
func TestImageRoot(t *testing.T) {
	for _, c := range []struct {
		prov, want string
	}{
		{``, ""},
		{`[{"stage":"prepare","args":["synthetic","--image-root","x"]},{"stage":"decode","args":["--model","m"]}]`, ""},
		{`[{"stage":"decode","args":["--model","m","--image-root","photos"]}]`, "photos"},
		{`[{"stage":"decode","args":["--image-root=/data/a"]},{"stage":"embed","args":[]},{"stage":"decode","args":["--image-root=b"]}]`, "b"},
	} {
		got, err := imageRoot(json.RawMessage(c.prov))
		if err != nil || got != c.want {
			t.Errorf("%s: %q, %v; want %q", c.prov, got, err, c.want)
		}
		l := &loaded{imageRoot: got}
		want := filepath.Join(c.want, "img/1.png")
		if p := l.path(index.Item{ImagePath: "img/1.png"}); p != want {
			t.Errorf("%s: img/1.png resolves to %s, want %s", c.prov, p, want)
		}
		if p := l.path(index.Item{ImagePath: "/abs/1.png"}); p != "/abs/1.png" {
			t.Errorf("%s: an absolute path resolves to %s", c.prov, p)
		}
	}
	if _, err := imageRoot(json.RawMessage(`{"not": "steps"}`)); err == nil {
		t.Error("a provenance that is not a list of steps was taken")
	}
}
