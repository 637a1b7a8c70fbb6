package hub

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clipline/clipline/internal/fetch"
)

// miniHub serves repositories the way huggingface.co does: GET/HEAD
// /{owner}/{name}/resolve/{rev}/{file}, large files answered with a 302 to
// a CDN path, a missing file with 404, an unknown repository with 401.
type miniHub struct {
	mu       sync.Mutex
	repos    map[string]map[string][]byte // "owner/name@rev" -> file -> bytes
	requests []string
	auth     []string
	ranges   []string
	// truncate, when set, ends that file's body after half its bytes.
	truncate string
}

func (h *miniHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests = append(h.requests, r.Method+" "+r.URL.Path)
	h.auth = append(h.auth, r.Header.Get("Authorization"))
	if rg := r.Header.Get("Range"); rg != "" {
		h.ranges = append(h.ranges, rg)
	}
	h.mu.Unlock()
	if rest, ok := strings.CutPrefix(r.URL.Path, "/cdn/"); ok {
		repo, file, _ := strings.Cut(rest, "/-/")
		h.serve(w, r, repo, file)
		return
	}
	before, file, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/resolve/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	rev, name, _ := strings.Cut(file, "/")
	key := before + "@" + rev
	files, ok := h.repos[key]
	if !ok {
		http.Error(w, "Repository Not Found", http.StatusUnauthorized)
		return
	}
	if _, ok := files[name]; !ok {
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	if strings.HasSuffix(name, ".safetensors") || strings.HasSuffix(name, ".bin") {
		http.Redirect(w, r, "/cdn/"+key+"/-/"+name, http.StatusFound)
		return
	}
	h.serve(w, r, key, name)
}

func (h *miniHub) serve(w http.ResponseWriter, r *http.Request, key, name string) {
	data, ok := h.repos[key][name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if name == h.truncate {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:len(data)/2]) // then the connection drops
		return
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

func clipRepo() map[string][]byte {
	return map[string][]byte{
		"config.json":              []byte(`{"projection_dim": 32}`),
		"model.safetensors":        bytes.Repeat([]byte{1, 2, 3, 4}, 50_000),
		"vocab.json":               []byte(`{"a</w>": 0}`),
		"merges.txt":               []byte("#version: 0.2\n"),
		"preprocessor_config.json": []byte(`{"crop_size": 32}`),
		"tokenizer_config.json":    []byte(`{}`),
		// special_tokens_map.json absent: optional.
	}
}

func testOpts(t *testing.T, endpoint string) Options {
	return Options{
		Endpoint: endpoint,
		CacheDir: t.TempDir(),
		Fetch:    fetch.Options{Retries: -1, RetryDelay: time.Millisecond},
	}
}

func TestDownloadMiniRepo(t *testing.T) {
	repo := clipRepo()
	h := &miniHub{repos: map[string]map[string][]byte{"openai/clip-mini@main": repo}}
	ts := httptest.NewServer(h)
	opts := testOpts(t, ts.URL)
	dir, err := Resolve("openai/clip-mini", opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(opts.CacheDir, "hub", "openai", "clip-mini", "main"); dir != want {
		t.Fatalf("dir = %s, want %s", dir, want)
	}
	for name, data := range repo {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("%s differs", name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "special_tokens_map.json")); !os.IsNotExist(err) {
		t.Fatal("absent optional file created")
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "*.part"))
	if len(parts) > 0 {
		t.Fatalf("leftover partial files %v", parts)
	}
	// Offline second run: the server is gone, the cache answers.
	ts.Close()
	dir2, err := Resolve("openai/clip-mini", opts)
	if err != nil || dir2 != dir {
		t.Fatalf("cached resolve: %q, %v", dir2, err)
	}
}

func TestResumeInterruptedCheckpoint(t *testing.T) {
	repo := clipRepo()
	h := &miniHub{repos: map[string]map[string][]byte{"org/m@main": repo}}
	ts := httptest.NewServer(h)
	defer ts.Close()
	opts := testOpts(t, ts.URL)
	// A killed download leaves its staging folder; the next run resumes.
	stage := stagingDir("org/m", opts)
	os.MkdirAll(stage, 0o755)
	half := repo["model.safetensors"][:100_000]
	if err := os.WriteFile(filepath.Join(stage, "model.safetensors.part"), half, 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := Download(t.Context(), "org/m", opts)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "model.safetensors"))
	if !bytes.Equal(got, repo["model.safetensors"]) {
		t.Fatal("resumed weights differ")
	}
	// The redirect to the CDN path carries the Range header again.
	if len(h.ranges) == 0 || h.ranges[0] != "bytes=100000-" || h.ranges[len(h.ranges)-1] != "bytes=100000-" {
		t.Errorf("want a resume at byte 100000, ranges %q", h.ranges)
	}
	noDir(t, filepath.Dir(stage))
}

func noDir(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(p)
		t.Errorf("%s should not exist (stat %v, entries %v)", p, err, entries)
	}
}

// TestFailedDownloadLeavesNothing: a 404 on one file or a truncated body
// leaves no folder of the model in the cache (nor an empty cache), and the
// error names the file and its URL.
func TestFailedDownloadLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		missing  string // file the repository lacks
		truncate string // file whose body is cut
		want     []string
	}{
		{"404", "merges.txt", "", []string{"lacks merges.txt", "merges.txt (URL/org/m/resolve/main/merges.txt)", "404 Not Found"}},
		{"truncated", "", "vocab.json", []string{"vocab.json (URL/org/m/resolve/main/vocab.json)", "body truncated"}},
		{"truncated weights", "", "model.safetensors", []string{"model.safetensors (URL/org/m/resolve/main/model.safetensors)", "body truncated"}},
	} {
		repo := clipRepo()
		delete(repo, tc.missing)
		h := &miniHub{repos: map[string]map[string][]byte{"org/m@main": repo}, truncate: tc.truncate}
		ts := httptest.NewServer(h)
		opts := testOpts(t, ts.URL)
		opts.CacheDir = filepath.Join(opts.CacheDir, "cache") // not there yet
		var progress bytes.Buffer
		opts.Fetch.Progress = &progress
		_, err := Resolve("org/m", opts)
		ts.Close()
		if err == nil {
			t.Errorf("%s: download accepted", tc.name)
			continue
		}
		for _, want := range tc.want {
			if want = strings.ReplaceAll(want, "URL", ts.URL); !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, want)
			}
		}
		noDir(t, opts.CacheDir)
		if !strings.Contains(progress.String(), "hub: downloading org/m@main from "+ts.URL) {
			t.Errorf("%s: progress lacks the download line:\n%s", tc.name, progress.String())
		}
	}
}

// TestConcurrentFirstDownload: the stages of one pipeline start together
// with the same hub id; the model is fetched once and all of them get it.
func TestConcurrentFirstDownload(t *testing.T) {
	h := &miniHub{repos: map[string]map[string][]byte{"org/m@main": clipRepo()}}
	ts := httptest.NewServer(h)
	defer ts.Close()
	opts := testOpts(t, ts.URL)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Resolve("org/m", opts)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	gets := 0
	for _, r := range h.requests {
		if strings.HasPrefix(r, "GET ") && strings.HasSuffix(r, "/config.json") {
			gets++
		}
	}
	if gets != 1 {
		t.Errorf("config.json fetched %d times, want once", gets)
	}
	noDir(t, filepath.Join(opts.CacheDir, "hub", ".incomplete"))
}

func TestBinOnlyRepository(t *testing.T) {
	repo := clipRepo()
	delete(repo, "model.safetensors")
	repo["pytorch_model.bin"] = []byte("pickle")
	h := &miniHub{repos: map[string]map[string][]byte{"old/clip@main": repo}}
	ts := httptest.NewServer(h)
	defer ts.Close()
	_, err := Resolve("old/clip", testOpts(t, ts.URL))
	if err == nil {
		t.Fatal("bin-only repository accepted")
	}
	for _, want := range []string{"old/clip", "pytorch_model.bin", "safetensors", "convert"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestNoWeightsAtAll(t *testing.T) {
	repo := clipRepo()
	delete(repo, "model.safetensors")
	h := &miniHub{repos: map[string]map[string][]byte{"x/y@main": repo}}
	ts := httptest.NewServer(h)
	defer ts.Close()
	_, err := Resolve("x/y", testOpts(t, ts.URL))
	if err == nil || !strings.Contains(err.Error(), "no model.safetensors") || strings.Contains(err.Error(), "pytorch_model.bin") {
		t.Fatalf("got %v", err)
	}
}

func TestUnknownRepository(t *testing.T) {
	h := &miniHub{repos: map[string]map[string][]byte{}}
	ts := httptest.NewServer(h)
	defer ts.Close()
	_, err := Resolve("nobody/nothing", testOpts(t, ts.URL))
	if err == nil || !strings.Contains(err.Error(), "HF_TOKEN") || !strings.Contains(err.Error(), ts.URL+"/nobody/nothing/resolve/main/config.json") {
		t.Fatalf("got %v", err)
	}
}

func TestRevisionTokenAndEnv(t *testing.T) {
	h := &miniHub{repos: map[string]map[string][]byte{"org/m@v1.0": clipRepo()}}
	ts := httptest.NewServer(h)
	defer ts.Close()
	cache := t.TempDir()
	t.Setenv("HF_ENDPOINT", ts.URL)
	t.Setenv("CLIPLINE_CACHE", cache)
	t.Setenv("HF_TOKEN", "secret")
	dir, err := Resolve("org/m", Options{Revision: "v1.0", Fetch: fetch.Options{Retries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "hub", "org", "m", "v1.0"); dir != want {
		t.Fatalf("dir %s, want %s", dir, want)
	}
	if !strings.Contains(h.requests[0], "/org/m/resolve/v1.0/config.json") {
		t.Fatalf("first request %q", h.requests[0])
	}
	if h.auth[0] != "Bearer secret" {
		t.Fatalf("Authorization %q", h.auth[0])
	}
}

func TestResolveLocalDirAndBadArgs(t *testing.T) {
	local := t.TempDir()
	dir, err := Resolve(local, Options{Endpoint: "http://127.0.0.1:1"})
	if err != nil || dir != local {
		t.Fatalf("local dir: %q %v", dir, err)
	}
	f := filepath.Join(local, "config.json")
	os.WriteFile(f, []byte("{}"), 0o644)
	if _, err := Resolve(f, Options{}); err == nil || !strings.Contains(err.Error(), "is a file") {
		t.Fatalf("file arg: %v", err)
	}
	for _, bad := range []string{"", "./missing-dir", "../x", "a/b/c", "/abs/missing"} {
		if _, err := Resolve(bad, Options{Endpoint: "http://127.0.0.1:1"}); err == nil {
			t.Errorf("Resolve(%q) accepted", bad)
		}
	}
	for _, good := range []string{"openai/clip-vit-base-patch32", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "gpt2"} {
		if !ValidID(good) {
			t.Errorf("ValidID(%q) false", good)
		}
	}
}

// TestDownloadSigLIPRepo: a SigLIP checkpoint brings spiece.model instead
// of the BPE files; a repository with neither tokenizer is refused by name.
func TestDownloadSigLIPRepo(t *testing.T) {
	repo := clipRepo()
	delete(repo, "vocab.json")
	delete(repo, "merges.txt")
	repo["spiece.model"] = []byte("sentencepiece model bytes")
	bare := clipRepo()
	delete(bare, "vocab.json")
	h := &miniHub{repos: map[string]map[string][]byte{"google/siglip-mini@main": repo, "org/bare@main": bare}}
	ts := httptest.NewServer(h)
	defer ts.Close()
	opts := testOpts(t, ts.URL)
	dir, err := Resolve("google/siglip-mini", opts)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "spiece.model")); err != nil || !bytes.Equal(got, repo["spiece.model"]) {
		t.Errorf("spiece.model: %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "vocab.json")); !os.IsNotExist(err) {
		t.Error("vocab.json created for a SigLIP repository")
	}
	_, err = Resolve("org/bare", opts)
	if err == nil || !strings.Contains(err.Error(), "neither vocab.json and merges.txt (CLIP's BPE) nor spiece.model") {
		t.Errorf("repository without a tokenizer: %v", err)
	}
}
