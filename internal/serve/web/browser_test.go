package web_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/clipline/clipline/internal/browsertest"
)

// site is a running server with the page and what its index should answer.
type site struct {
	url      string
	query    string // a caption of the indexed data
	first    string // the image_id ranked first for query
	upload   string // an image file to search by
	uploadID string // the image_id ranked first for upload
	compare  bool   // the server has a compare index (serve --compare)
	// What /v1/info says: images indexed, the models' sources.
	count               int
	model, compareModel string
	k                   int // results per column to ask for
}

// browser starts a headless chromium (browsertest.Start): it skips without
// one, unless CLIPLINE_REQUIRE_BROWSER=1.
func browser(t *testing.T) context.Context { return browsertest.Start(t) }

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// wait polls js until it is truthy (10 s at most).
func wait(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("waiting for %s (%s): %v; status %q", what, js, err,
			eval[string](t, ctx, `document.querySelector("#status").textContent`))
	}
}

// The result ids shown, per column (the last column is the server's own
// results; with a compare index the first is the compare list).
const shownIDs = `[...document.querySelectorAll(".grid")].map(g => [...g.children].map(li => li.dataset.imageId))`

// Every thumbnail of the results has loaded and decoded.
const allDecoded = `(() => { const im = [...document.querySelectorAll(".result img")];
	return im.length > 0 && im.every(i => i.complete && i.naturalWidth > 0); })()`

func firstID(t *testing.T, ctx context.Context) string {
	t.Helper()
	cols := eval[[][]string](t, ctx, shownIDs)
	if len(cols) == 0 || len(cols[len(cols)-1]) == 0 {
		t.Fatalf("no results shown: %v", cols)
	}
	return cols[len(cols)-1][0]
}

// testPage drives the page as a user would: a shared link, the keyboard, a
// caption, more like this, the history, uploads by the file input, a drop
// and a paste, a failing search and Esc. It saves a screenshot of the first
// results under the test's temp dir, and to $CLIPLINE_SCREENSHOT when set
// (docs/serve.png is made that way).
func testPage(t *testing.T, s site) {
	ctx := browser(t)
	k := s.k
	open := s.url + "/?" + url.Values{"q": {s.query}, "k": {strconv.Itoa(k)}}.Encode()
	do(t, ctx, "open "+open, chromedp.Navigate(open))
	wait(t, ctx, "results", `document.querySelectorAll(".result").length > 0`)
	wait(t, ctx, "thumbnails decoded", allDecoded)
	if got := firstID(t, ctx); got != s.first {
		t.Errorf("first result for %q is %s, want %s", s.query, got, s.first)
	}
	if v := eval[string](t, ctx, `document.querySelector("#q").value`); v != s.query {
		t.Errorf("search box holds %q, want the link's %q", v, s.query)
	}
	cols := eval[[][]string](t, ctx, shownIDs)
	for _, c := range cols {
		if len(c) != k {
			t.Errorf("a column shows %d results, want k=%d: %v", len(c), k, cols)
		}
	}
	// The first card names its image, rank and score on screen.
	card := eval[string](t, ctx, `[...document.querySelectorAll(".grid")].pop().querySelector(".meta").textContent`)
	if !strings.Contains(card, s.first) || !strings.Contains(card, "#1") {
		t.Errorf("first card says %q; want its id %s and #1", card, s.first)
	}
	hint := eval[string](t, ctx, `document.querySelector("#info").textContent`)
	if want := fmt.Sprintf("%d images indexed, model %s", s.count, s.model); !strings.HasPrefix(hint, want) {
		t.Errorf("info line %q, want it to start %q", hint, want)
	}
	headings := eval[string](t, ctx, `[...document.querySelectorAll(".column h2")].map(h => h.textContent).join(" | ")`)
	marked := eval[string](t, ctx, `(([...document.querySelectorAll(".grid")].pop().querySelector(".caption.match")) || {}).textContent || ""`)
	if marked != s.query {
		t.Errorf("the first card marks the caption %q, want the query %q", marked, s.query)
	}
	if s.compare {
		if want := "Zero-shot " + s.compareModel + " | Fine-tuned " + s.model; headings != want {
			t.Errorf("column headings %q, want %q", headings, want)
		}
		if len(cols) != 2 {
			t.Fatalf("with a compare index the page shows %d columns, want 2", len(cols))
		}
		// The query is a caption of the data: its image is outlined in both
		// columns, and each says at which rank it first comes.
		outlined := eval[[]string](t, ctx, `[...document.querySelectorAll(".result.relevant")].map(li => li.dataset.imageId)`)
		for _, id := range outlined {
			if id != s.first {
				t.Errorf("%s outlined as relevant; only %s has the caption %q", id, s.first, s.query)
			}
		}
		if !slices.Contains(outlined, s.first) {
			t.Errorf("%s is not outlined as relevant (outlined: %v)", s.first, outlined)
		}
		notes := eval[[]string](t, ctx, `[...document.querySelectorAll(".first-relevant")].map(p => p.textContent)`)
		if len(notes) != 2 || !strings.Contains(notes[1], "rank 1 ") {
			t.Errorf("first-relevant notes %q; want one per column, the fine-tuned one at rank 1", notes)
		}
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(t.TempDir(), "page.png"), os.Getenv("CLIPLINE_SCREENSHOT")} {
		if p == "" {
			continue
		}
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}

	// Keyboard: / focuses the box, Enter searches and puts the query in the URL.
	other := eval[string](t, ctx, `document.querySelectorAll(".result")[1].querySelector(".caption").textContent`)
	do(t, ctx, "keys", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`),
		chromedp.KeyEvent("/"))
	if id := eval[string](t, ctx, `document.activeElement.id`); id != "q" {
		t.Fatalf("/ focused %q, want the search box", id)
	}
	do(t, ctx, "type a query", chromedp.Evaluate[chromedp.Void](`document.querySelector("#q").value = ""`),
		chromedp.KeyEvent(other), chromedp.KeyEvent(kb.Enter))
	wait(t, ctx, "URL of the typed query", `new URLSearchParams(location.search).get("q") === `+jsString(other))
	wait(t, ctx, "results of the typed query", fmt.Sprintf(`document.querySelector("#status").textContent.startsWith("%d results for “%s”")`, k, other))

	// Arrows move through the results; Enter on one searches for more like it.
	do(t, ctx, "arrow keys", chromedp.Focus(chromedp.CSS("#q")), chromedp.KeyEvent(kb.ArrowDown),
		chromedp.KeyEvent(kb.ArrowRight))
	focused := eval[string](t, ctx, `document.activeElement.dataset.imageId || ""`)
	last := eval[[][]string](t, ctx, shownIDs)
	if want := last[0][1]; focused != want {
		t.Fatalf("ArrowDown then ArrowRight focused %q, want the second result %s", focused, want)
	}
	do(t, ctx, "Enter on a result", chromedp.KeyEvent(kb.Enter))
	wait(t, ctx, "more like this in the URL", `new URLSearchParams(location.search).get("id") === `+jsString(focused))
	wait(t, ctx, "more like this results", `(() => { const g = [...document.querySelectorAll(".grid")].pop();
		return g && g.firstElementChild && g.firstElementChild.dataset.imageId === `+jsString(focused)+`; })()`)

	// A caption searches for itself.
	caption := eval[string](t, ctx, `document.querySelector(".result .caption").textContent`)
	do(t, ctx, "click a caption", chromedp.Click(chromedp.CSS(".result .caption")))
	wait(t, ctx, "caption search", `new URLSearchParams(location.search).get("q") === `+jsString(caption)+
		` && document.querySelector("#q").value === `+jsString(caption))

	// Back returns to the previous search, results and all.
	do(t, ctx, "history back", chromedp.Evaluate[chromedp.Void](`history.back()`))
	wait(t, ctx, "back to more like this", `new URLSearchParams(location.search).get("id") === `+jsString(focused)+
		` && document.querySelector("#status").textContent.includes("like `+focused+`")`)

	// Upload through the file input.
	do(t, ctx, "upload", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{s.upload}))
	wait(t, ctx, "upload results", `document.querySelector("#status").textContent.includes("results for the image")`)
	wait(t, ctx, "upload thumbnails", allDecoded)
	if got := firstID(t, ctx); got != s.uploadID {
		t.Errorf("first result for the uploaded %s is %s, want %s", s.upload, got, s.uploadID)
	}
	if q := eval[string](t, ctx, `location.search`); strings.Contains(q, "q=") || strings.Contains(q, "id=") {
		t.Errorf("after an upload the URL still names a query: %s", q)
	}

	// Drop and paste an image: the first result's own thumbnail, so it comes first.
	for _, ev := range []string{
		`new DragEvent("drop", {bubbles: true, cancelable: true, dataTransfer: dt})`,
		`new ClipboardEvent("paste", {bubbles: true, cancelable: true, clipboardData: dt})`,
	} {
		do(t, ctx, "clear", chromedp.KeyEvent(kb.Escape))
		wait(t, ctx, "cleared", `document.querySelectorAll(".result").length === 0 && location.search === "?k=`+strconv.Itoa(k)+`"`)
		do(t, ctx, ev, chromedp.Evaluate[chromedp.Void](`(async () => {
			const b = await (await fetch("v1/images/`+s.first+`")).blob();
			const dt = new DataTransfer();
			dt.items.add(new File([b], "x.png", {type: b.type || "image/png"}));
			document.body.dispatchEvent(`+ev+`);
		})()`, chromedp.EvalAwaitPromise))
		wait(t, ctx, "results for "+ev, `document.querySelector("#status").textContent.includes("results for the image")`)
		if got := firstID(t, ctx); got != s.first {
			t.Errorf("%s: first result %s, want the image's own id %s", ev, got, s.first)
		}
	}

	// A failing search says why, from the server's {"error": ...}.
	do(t, ctx, "open an unknown id", chromedp.Navigate(s.url+"/?id=no-such-image"))
	wait(t, ctx, "error shown", `document.querySelector("#status.error") !== null`)
	if msg := eval[string](t, ctx, `document.querySelector("#status").textContent`); !strings.Contains(msg, "no-such-image") {
		t.Errorf("error status %q does not name the unknown id", msg)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}
