// Package browsertest starts Debian's chromium, headless, for the tests
// that check clipline's pages in a real browser (serve's search page,
// report's HTML). Without chromium they skip, unless
// CLIPLINE_REQUIRE_BROWSER=1 (CI sets it) makes that a failure.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/clipline/clipline/internal/testreq"
)

// Chromium is the browser's path ($CLIPLINE_CHROMIUM first, then PATH).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{os.Getenv("CLIPLINE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testreq.Missing(t, "CLIPLINE_REQUIRE_BROWSER", "the browser test", "no chromium on PATH", "apt-get install chromium")
	return ""
}

// Start starts a headless chromium with a fresh profile and a 1280×900
// window, and returns a tab's context; two minutes bound it, and the
// test's end closes it.
func Start(t testing.TB) context.Context {
	t.Helper()
	exe := Chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(ctx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelTab)
	return ctx
}
