package serve

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/index"
)

// gated is the fixture's model with a gate in front of its text encodes:
// each call announces itself on entered and waits for release (when the
// gate is shut); calls' row counts are recorded.
type gated struct {
	Encoder
	open    atomic.Bool
	entered chan int
	release chan struct{}
	mu      sync.Mutex
	rows    []int
}

func newGated() *gated {
	return &gated{Encoder: fix.model, entered: make(chan int, 64), release: make(chan struct{})}
}

func (g *gated) EncodeTokens(ids []int32) ([][]float32, error) {
	n := len(ids) / g.ContextLength()
	g.mu.Lock()
	g.rows = append(g.rows, n)
	g.mu.Unlock()
	if !g.open.Load() {
		g.entered <- n
		<-g.release
	}
	return g.Encoder.EncodeTokens(ids)
}

func (g *gated) calls() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.rows)
}

// waitQueued waits until n encodes are queued behind the gate.
func waitQueued(t *testing.T, b *batcher, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(b.queue) < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d encodes queued after 10s, want %d", len(b.queue), n)
		}
	}
}

type answer struct {
	code int
	body string
	resp Response
}

// async runs a text search in the background.
func async(t *testing.T, url, text string, k int) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		var a answer
		a.code, a.body = searchJSON(t, url, Request{Text: text, TopK: &k}, &a.resp)
		ch <- a
	}()
	return ch
}

// TestMicroBatching: texts queued while the model is busy go through it in
// one call, and each gets the vector it gets alone, bit for bit (so the
// same scores).
func TestMicroBatching(t *testing.T) {
	fixture(t)
	its := items(t)
	var texts []string
	for _, it := range its[:8] {
		texts = append(texts, it.Captions[1])
	}
	// Alone, one at a time.
	_, ts := server(t, options(nil))
	alone := map[string][]Result{}
	for _, s := range texts {
		var r Response
		if code, body := searchJSON(t, ts.URL, Request{Text: s, TopK: ptr(fixImages)}, &r); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		alone[s] = r.Results
	}

	g := newGated()
	o := options(g)
	o.MaxBatch = 16
	srv, ts := server(t, o)
	first := async(t, ts.URL, texts[0], fixImages)
	<-g.entered // the model is busy with the first text
	var rest []<-chan answer
	for _, s := range texts[1:] {
		rest = append(rest, async(t, ts.URL, s, fixImages))
	}
	waitQueued(t, srv.model, len(texts)-1)
	g.open.Store(true)
	close(g.release)
	for i, ch := range append([]<-chan answer{first}, rest...) {
		a := <-ch
		if a.code != 200 {
			t.Fatalf("%q: %d %s", texts[i], a.code, a.body)
		}
		if !sameResults(a.resp.Results, alone[texts[i]]) {
			t.Errorf("%q batched: %v\nalone: %v", texts[i], a.resp.Results[:3], alone[texts[i]][:3])
		}
	}
	calls := g.calls()
	if len(calls) != 2 || calls[0] != 1 || calls[1] != len(texts)-1 {
		t.Errorf("encoder calls with %v rows; want the first text and then the other %d in one", calls, len(texts)-1)
	}
	_, metrics := call(t, "GET", ts.URL+"/metrics", "", nil, nil)
	if !strings.Contains(metrics, `clipline_serve_encode_batch_size_bucket{kind="text",model="model",le="4"} 1`) ||
		!strings.Contains(metrics, `clipline_serve_encode_batch_size_count{kind="text",model="model"} 2`) {
		t.Errorf("batch size histogram:\n%s", grep(metrics, "batch_size"))
	}
}

func grep(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestFullQueue: with the model busy and the queue full, a search is
// answered 503 at once; the queued ones then finish.
func TestFullQueue(t *testing.T) {
	fixture(t)
	g := newGated()
	o := options(g)
	o.Queue, o.MaxBatch = 2, 1
	s, ts := server(t, o)
	its := items(t)
	first := async(t, ts.URL, its[0].Captions[0], 5)
	<-g.entered
	queued := []<-chan answer{async(t, ts.URL, its[1].Captions[0], 5), async(t, ts.URL, its[2].Captions[0], 5)}
	waitQueued(t, s.model, 2)
	start := time.Now()
	code, body := searchJSON(t, ts.URL, Request{Text: its[3].Captions[0]}, nil)
	wantError(t, "a search with the queue full", code, body, 503, "busy")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the 503 took %v", d)
	}
	g.open.Store(true)
	close(g.release)
	for _, ch := range append(queued, first) {
		if a := <-ch; a.code != 200 {
			t.Errorf("a queued search: %d %s", a.code, a.body)
		}
	}
	_, metrics := call(t, "GET", ts.URL+"/metrics", "", nil, nil)
	if !strings.Contains(metrics, `clipline_serve_queue_rejected_total{model="model"} 1`) ||
		!strings.Contains(metrics, `clipline_serve_requests_total{code="503",endpoint="POST /v1/search"} 1`) ||
		!strings.Contains(metrics, `clipline_serve_queue_depth{model="model"} 0`) {
		t.Errorf("metrics:\n%s", grep(metrics, "clipline_serve_"))
	}
}

// TestTimeout: a search still waiting for the model after --timeout gets a
// 503 saying so.
func TestTimeout(t *testing.T) {
	fixture(t)
	g := newGated()
	o := options(g)
	o.Timeout = 300 * time.Millisecond
	_, ts := server(t, o)
	defer close(g.release)
	code, body := searchJSON(t, ts.URL, Request{Text: "a red square"}, nil)
	wantError(t, "a search past the timeout", code, body, 503, "longer than 300ms")
}

// TestReload: a reload swaps in the rebuilt bundle while a search that
// started before it finishes on the old one, which is closed afterwards;
// a bundle that cannot be served leaves the old one in place.
func TestReload(t *testing.T) {
	fixture(t)
	dir := filepath.Join(t.TempDir(), "idx")
	if err := build(fix.stream, dir, index.BuildOptions{Split: "test"}); err != nil {
		t.Fatal(err)
	}
	g := newGated()
	o := options(g)
	o.Index = dir
	s, ts := server(t, o)
	old := s.cur.Load()
	its := items(t)
	inflight := async(t, ts.URL, its[0].Captions[0], 1000)
	<-g.entered

	if err := build(fix.stream, dir, index.BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	var rel struct {
		Counts map[string]int `json:"counts"`
	}
	if code, body := call(t, "POST", ts.URL+"/v1/admin/reload", "", nil, &rel); code != 200 || rel.Counts["index"] != fixImages {
		t.Fatalf("reload: %d %s", code, body)
	}
	var in Info
	call(t, "GET", ts.URL+"/v1/info", "", nil, &in)
	if in.Index.Count != fixImages || in.Index.Generation != 2 {
		t.Errorf("after the reload: %d images, generation %d", in.Index.Count, in.Index.Generation)
	}
	if old.closed.Load() {
		t.Error("the old bundle was closed while a search was using it")
	}
	g.open.Store(true)
	close(g.release)
	a := <-inflight
	if a.code != 200 || a.resp.Total != in.Index.Splits["test"] || len(a.resp.Results) != in.Index.Splits["test"] {
		t.Errorf("the search in flight: %d, %d results of %d; want the old bundle's %d", a.code, len(a.resp.Results), a.resp.Total, in.Index.Splits["test"])
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if old.closed.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the old bundle is still open 10s after its last search")
		}
	}
	var after Response
	searchJSON(t, ts.URL, Request{Text: its[0].Captions[0], TopK: ptr(1000)}, &after)
	if after.Total != fixImages {
		t.Errorf("a search after the reload saw %d images", after.Total)
	}

	// A bundle of another model: the reload fails, the current one stays.
	if err := os.WriteFile(filepath.Join(dir, index.ManifestFile), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := call(t, "POST", ts.URL+"/v1/admin/reload", "", nil, nil)
	wantError(t, "a reload of a broken bundle", code, body, 409, "previous bundles stay")
	if code, body := searchJSON(t, ts.URL, Request{Text: "a red square"}, nil); code != 200 {
		t.Errorf("after a failed reload: %d %s", code, body)
	}
}

// TestGracefulShutdown: when Serve's context ends, new connections are
// refused and the search in flight still gets its answer.
func TestGracefulShutdown(t *testing.T) {
	fixture(t)
	g := newGated()
	s, err := New(options(g))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, 20*time.Second) }()
	inflight := async(t, url, "a red square", 3)
	<-g.entered
	cancel()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections 10s after the shutdown began")
		}
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	default:
	}
	g.open.Store(true)
	close(g.release)
	if a := <-inflight; a.code != 200 || len(a.resp.Results) != 3 {
		t.Errorf("the search in flight: %d %s", a.code, a.body)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still running 10s after its last request")
	}
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}

// TestCompareAndCaptions: a compare bundle's results come beside the main
// ones (here the same bundle and model, so equal), and a captions bundle
// answers image to text.
func TestCompareAndCaptions(t *testing.T) {
	fixture(t)
	o := options(nil)
	o.Compare, o.CompareModel = fix.images, o.Model
	o.Captions = fix.caps
	_, ts := server(t, o)
	its := items(t)
	caption := its[2].Captions[0]
	var r Response
	if code, body := searchJSON(t, ts.URL, Request{Text: caption, TopK: ptr(5)}, &r); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if !sameResults(r.Compare, r.Results) || r.FirstRelevantRank["compare"] != r.FirstRelevantRank["results"] || r.FirstRelevantRank["results"] < 1 {
		t.Errorf("compare %v, results %v, first relevant %v", r.Compare, r.Results, r.FirstRelevantRank)
	}
	var no Response
	searchJSON(t, ts.URL, Request{Text: caption, TopK: ptr(5), Compare: ptr(false)}, &no)
	if no.Compare != nil || !sameResults(no.Results, r.Results) {
		t.Errorf("compare false: %v", no.Compare)
	}

	// Image to text (rank's exactness: TestRankOrder): caption rows.
	var caps Response
	if code, body := searchJSON(t, ts.URL, Request{ImageID: its[2].ImageID, Target: "captions", TopK: ptr(5), Split: "test"}, &caps); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if len(caps.Results) != 5 || caps.Total != 5*infoSplit(t, ts.URL, "test") {
		t.Fatalf("captions: %d of %d: %+v", len(caps.Results), caps.Total, caps.Results)
	}
	for _, c := range caps.Results {
		if c.Caption == "" || c.ImageID == "" || c.Split != "test" {
			t.Errorf("caption result %+v", c)
		}
	}
	var info Info
	call(t, "GET", ts.URL+"/v1/info", "", nil, &info)
	if info.Captions == nil || info.Captions.Count != 5*fixImages || info.Compare == nil || info.Compare.Model.Source != "base" {
		t.Errorf("info: captions %+v, compare %+v", info.Captions, info.Compare)
	}
}

func infoSplit(t *testing.T, url, split string) int {
	var in Info
	call(t, "GET", url+"/v1/info", "", nil, &in)
	return in.Index.Splits[split]
}

// TestNoCrash: requests that exercise odd paths get answers, not a dropped
// connection; a panicking handler gets a 500.
func TestNoCrash(t *testing.T) {
	fixture(t)
	s, ts := server(t, options(nil))
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/search", `{"text": "` + strings.Repeat("long ", 5000) + `"}`},
		{"POST", "/v1/search", `{"text": "a", "top_k": 1e30}`},
		{"POST", "/v1/search", `{"terms": [{"text": "a", "weight": 1e300}]}`},
		{"POST", "/v1/search", `{"text": "\u0000\ud800"}`},
		{"POST", "/v1/search", `[1, 2]`},
		{"POST", "/v1/search", `{"text": "a"} {"text": "b"}`},
		{"GET", "/v1/images/%ff%fe", ""},
		{"GET", "/nothing-here.html", ""},
	} {
		code, _ := call(t, c.method, ts.URL+c.path, "application/json", strings.NewReader(c.body), nil)
		if code >= 500 {
			t.Errorf("%s %s %.40q: status %d", c.method, c.path, c.body, code)
		}
	}
	// The last guard: a handler that panics.
	h := s.observe(func() *http.ServeMux {
		m := http.NewServeMux()
		m.Handle("/boom", s.api(public, func(w http.ResponseWriter, r *http.Request) error { panic("boom") }))
		return m
	}())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "internal error") {
		t.Errorf("a panic: %d %s", rec.Code, rec.Body.String())
	}
}
