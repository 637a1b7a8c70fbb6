package web_test

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/clipline/clipline/clip"
	"github.com/clipline/clipline/internal/browsertest"
	"github.com/clipline/clipline/internal/index"
	"github.com/clipline/clipline/internal/index/indextest"
	"github.com/clipline/clipline/internal/modelid"
	"github.com/clipline/clipline/internal/serve"
	"github.com/clipline/clipline/internal/serve/web"
	"github.com/clipline/clipline/internal/stream"
)

// root is the repository root (tests run in the package's directory).
var root = filepath.Join("..", "..", "..")

// TestPage runs the page on the real server: serve's handler over a bundle
// of synthetic scenes embedded with the base model, with a second one as
// the compare index. The expectations come from the clip package's search
// of the same bundles: the query is a caption of one image only, which the
// model ranks first.
//
// CLIPLINE_PAGE_INDEX and CLIPLINE_PAGE_COMPARE name other bundles, each
// served with the model its manifest names; with `make -f pipeline.mk
// serve`'s, CLIPLINE_SCREENSHOT=docs/serve.png makes README's screenshot:
//
//	CLIPLINE_PAGE_INDEX=out/default/index CLIPLINE_PAGE_COMPARE=out/default/index-base \
//	  CLIPLINE_SCREENSHOT=docs/serve.png go test ./internal/serve/web -run 'TestPage$'
//
// (relative paths are taken from the repository root).
func TestPage(t *testing.T) {
	browsertest.Chromium(t) // skip before building anything
	idx, cmp := fromRoot(os.Getenv("CLIPLINE_PAGE_INDEX")), fromRoot(os.Getenv("CLIPLINE_PAGE_COMPARE"))
	k := 6
	if idx == "" {
		idx, cmp = bundles(t)
		k = 4
	}
	if p := os.Getenv("CLIPLINE_SCREENSHOT"); p != "" && !filepath.IsAbs(p) {
		t.Setenv("CLIPLINE_SCREENSHOT", fromRoot(p))
	}
	testPage(t, realSite(t, idx, cmp, k, ""))
}

// TestPageToken: against serve --token, the page asks for the token at the
// first 401, once, and sends it on every call, the thumbnails' included
// (fetched with the header, which <img src> cannot send).
func TestPageToken(t *testing.T) {
	browsertest.Chromium(t)
	idx, cmp := bundles(t)
	const token = "s3cret"
	s := realSite(t, idx, cmp, 4, token)
	ctx := browser(t)
	do(t, ctx, "open the page", chromedp.Navigate(s.url+"/?k=4"),
		chromedp.Evaluate[chromedp.Void](`window.asked = 0; window.prompt = () => { window.asked++; return "`+token+`"; }`),
		chromedp.Focus(chromedp.CSS("#q")), chromedp.KeyEvent(s.query), chromedp.KeyEvent(kb.Enter))
	wait(t, ctx, "results", `document.querySelectorAll(".result").length > 0`)
	wait(t, ctx, "thumbnails decoded", allDecoded)
	if got := firstID(t, ctx); got != s.first {
		t.Errorf("first result %s, want %s", got, s.first)
	}
	wait(t, ctx, "the info line, once the token is known", `document.querySelector("#info").textContent !== ""`)
	do(t, ctx, "click a caption", chromedp.Click(chromedp.CSS(".result .caption")))
	wait(t, ctx, "the caption's results", `document.querySelector("#status").textContent.startsWith("4 results for “" + document.querySelector("#q").value)`)
	if n := eval[int](t, ctx, `window.asked`); n != 1 {
		t.Errorf("the page asked for the token %d times, want once", n)
	}
}

// bundles indexes 16 synthetic scenes embedded with the base model twice,
// as the index and the compare index.
func bundles(t *testing.T) (idx, cmp string) {
	t.Helper()
	dir := t.TempDir()
	embedded := indextest.Stream(t, dir, 16)
	idx, cmp = filepath.Join(dir, "index"), filepath.Join(dir, "compare")
	for _, d := range []string{idx, cmp} {
		buildIndex(t, embedded, d)
	}
	return idx, cmp
}

func fromRoot(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

func buildIndex(t *testing.T, embedded, dir string) {
	t.Helper()
	in, err := stream.Open(embedded)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := index.Build(in, dir, index.BuildOptions{}); err != nil {
		t.Fatal(err)
	}
}

// opened is a bundle with the model that made it.
type opened struct {
	ix    *clip.Index
	m     *clip.Model
	model serve.Model
}

func open(t *testing.T, dir string) opened {
	t.Helper()
	ix, err := clip.OpenIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	src := ix.ModelSource()
	path := src
	if _, err := os.Stat(fromRoot(src)); err == nil {
		path = fromRoot(src) // the pipeline's bundles name models from the root
	}
	m, err := clip.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	hash, err := modelid.Hash(m.Dir())
	if err != nil {
		t.Fatal(err)
	}
	return opened{ix, m, serve.Model{Enc: m, Hash: hash, Source: src}}
}

// realSite serves the bundles idx and cmp as `serve --index idx --compare
// cmp [--token token]` does, and picks the query: a caption of one image only that the
// index's model ranks first, preferably one the compare model does not.
func realSite(t *testing.T, idx, cmp string, k int, token string) site {
	t.Helper()
	main, other := open(t, idx), open(t, cmp)
	s, err := serve.New(serve.Options{Index: idx, Compare: cmp, Model: main.model, CompareModel: other.model,
		ImageRoot: root, MaxUpload: 20 << 20, MaxPixels: 50e6, Timeout: 20 * time.Second, Queue: 16,
		BatchWindow: time.Millisecond, MaxBatch: 8, ThumbCache: 8 << 20, Web: web.FS, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})

	all, err := main.ix.SearchVector(make([]float32, main.ix.Dim()), main.ix.Len()) // every row, in order
	if err != nil {
		t.Fatal(err)
	}
	holders := map[string]int{}
	for _, h := range all {
		for _, c := range h.Captions {
			holders[c]++
		}
	}
	var query, first string
	for _, h := range all {
		for _, c := range h.Captions {
			if holders[c] != 1 {
				continue
			}
			top, err := main.ix.SearchText(main.m, c, 1)
			if err != nil {
				t.Fatal(err)
			}
			if top[0].ImageID != h.ImageID {
				continue
			}
			if query == "" {
				query, first = c, h.ImageID
			}
			if top, err = other.ix.SearchText(other.m, c, 1); err != nil {
				t.Fatal(err)
			}
			if top[0].ImageID != h.ImageID {
				query, first = c, h.ImageID
				goto found
			}
		}
	}
	if query == "" {
		t.Fatalf("no caption of %s is ranked first for its own image by %s", idx, main.model.Source)
	}
found:
	t.Logf("query %q, first %s", query, first)

	// Upload the last image; the reference says what comes first for it.
	up := filepath.Join(root, all[len(all)-1].ImagePath)
	if filepath.IsAbs(all[len(all)-1].ImagePath) {
		up = all[len(all)-1].ImagePath
	}
	top, err := main.ix.SearchImageFile(main.m, up, 1)
	if err != nil {
		t.Fatal(err)
	}
	return site{url: ts.URL, query: query, first: first, upload: up, uploadID: top[0].ImageID, compare: true,
		count: main.ix.Len(), model: main.model.Source, compareModel: other.model.Source, k: k}
}
