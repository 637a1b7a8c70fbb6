package stages

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/clipline/clipline/internal/stream/streamtest"
)

// TestHubID: every stage that takes --model accepts a Hugging Face id as
// well as a directory (README's headline pipeline passes the same --model to
// each), downloading it into the cache; a local server stands in for the hub.
// The rows written from the id equal those written from the directory.
func TestHubID(t *testing.T) {
	const model = "testdata/base-model"
	var requests int
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		name, ok := strings.CutPrefix(r.URL.Path, "/test-org/base/resolve/main/")
		if !ok || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, filepath.Join(root, model, name))
	}))
	defer ts.Close()
	t.Setenv("HF_ENDPOINT", ts.URL)
	cache := t.TempDir()
	t.Setenv("CLIPLINE_CACHE", cache)

	dir := t.TempDir()
	prepared := filepath.Join(dir, "p.arrow")
	if _, errOut, code := stage(t, nil, "prepare", "synthetic", "--images", "3", "--render-dir", dir, "--out", prepared); code != 0 {
		t.Fatalf("prepare: %s", errOut)
	}
	for _, s := range []string{"tokenize", "decode"} {
		fromDir, fromID := filepath.Join(dir, s+"-dir.arrow"), filepath.Join(dir, s+"-id.arrow")
		if _, errOut, code := stage(t, nil, s, "--model", model, "--in", prepared, "--out", fromDir); code != 0 {
			t.Fatalf("%s --model %s: %s", s, model, errOut)
		}
		if _, errOut, code := stage(t, nil, s, "--model", "test-org/base", "--in", prepared, "--out", fromID); code != 0 {
			t.Fatalf("%s --model test-org/base: %s", s, errOut)
		}
		a, b := streamtest.Batches(t, fromDir), streamtest.Batches(t, fromID)
		if len(a) != len(b) || len(a) == 0 {
			t.Fatalf("%s: %d batches from the directory, %d from the id", s, len(a), len(b))
		}
		for i := range a {
			if !array.RecordEqual(a[i], b[i]) {
				t.Errorf("%s: batch %d from the id differs from the directory's", s, i)
			}
		}
		_, errOut, code := stage(t, nil, s, "--model", "test-org/absent", "--in", prepared, "--out", filepath.Join(dir, "x.arrow"))
		if code == 0 || !strings.Contains(errOut, "test-org/absent") {
			t.Errorf("%s --model test-org/absent: status %d, stderr %q; want a failure naming the id", s, code, errOut)
		}
	}
	if requests == 0 {
		t.Error("no request reached the server")
	}
	// The failed id left no folder in the cache.
	err := filepath.Walk(cache, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.Contains(p, "absent") {
			t.Errorf("failed download left %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
