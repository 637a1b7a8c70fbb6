package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/clipline/clipline/internal/browsertest"
)

// writeRun writes a small train output directory: metrics.jsonl with log
// steps and two validations, the effective config and a trainer state.
func writeRun(t *testing.T, dir string) {
	t.Helper()
	var lines []string
	for s := 10; s <= 100; s += 10 {
		lines = append(lines, fmt.Sprintf(`{"step":%d,"epoch":%g,"loss":%g,"learning_rate":%g,"grad_norm":%g,"elapsed_s":%d}`,
			s, float64(s)/50, 5/float64(s), 0.001*(1-float64(s)/110), 3-float64(s)/50, s/10))
		if s%50 == 0 {
			lines = append(lines, fmt.Sprintf(`{"step":%d,"epoch":%d,"eval":{"t2i":{"r1":%g},"i2t":{"r1":%g},"images":40,"queries":80},"elapsed_s":%d}`,
				s, s/50, float64(s)/200, float64(s)/250, s/10))
		}
	}
	state, _ := json.Marshal(map[string]any{"global_step": 100, "base_model_name_or_path": "test/base-model"})
	for name, content := range map[string]string{
		"metrics.jsonl":                     strings.Join(lines, "\n") + "\n",
		"final/training_config.yaml":        "model_name_or_path: test/base-model\ndevice: cpu\nepochs: 2\n",
		"checkpoint-100/trainer_state.json": string(state),
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBrowser opens the report from disk in headless chromium: no console
// errors or exceptions, every image decoded, the galleries' rows, the
// charts. It saves a screenshot under the test's temp dir, and to
// $CLIPLINE_SCREENSHOT when set. With $CLIPLINE_REPORT_HTML it opens that
// file (the default run's) instead of the fixture's:
//
//	CLIPLINE_REPORT_HTML=$PWD/out/default/report.html CLIPLINE_SCREENSHOT=$PWD/docs/report.png \
//	  go test ./internal/report -run TestBrowser -count=1
func TestBrowser(t *testing.T) {
	ctx := browsertest.Start(t) // skips before building anything
	file := os.Getenv("CLIPLINE_REPORT_HTML")
	wantT2I, wantI2T := -1, SampleImages
	if file == "" {
		f := makeFixture(t)
		writeRun(t, filepath.Join(f.dir, "run"))
		before, _, _ := LoadMetrics(f.metrics[0])
		after, _, _ := LoadMetrics(f.metrics[1])
		p, err := BuildPage(HTMLInput{ZeroShot: before, FineTuned: after, Before: f.results[0], After: f.results[1],
			Images: &Images{Paths: f.paths}, RunDir: filepath.Join(f.dir, "run"), Seconds: 12.5})
		if err != nil {
			t.Fatal(err)
		}
		wantT2I, wantI2T = len(p.T2I), len(p.I2T)
		file = filepath.Join(f.dir, "report.html")
		out, err := os.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WriteHTML(out); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var problems []string
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, fmt.Sprintf("exception: %s (line %d)", ev.ExceptionDetails.Text, ev.ExceptionDetails.LineNumber))
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("file://"+abs)); err != nil {
		t.Fatalf("open %s: %v", abs, err)
	}
	eval := func(js string) int {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.readyState === "complete" && [...document.images].every(i => i.complete)`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("waiting for the images: %v", err)
	}
	images := eval(`document.images.length`)
	bad := eval(`[...document.images].filter(i => !(i.naturalWidth > 0)).length`)
	if images == 0 || bad != 0 {
		t.Errorf("%d images, %d not decoded", images, bad)
	}
	t2i, i2t := eval(`document.querySelectorAll("#t2i tr.t2i-row").length`), eval(`document.querySelectorAll("#i2t tr.i2t-row").length`)
	if wantT2I >= 0 && t2i != wantT2I || wantT2I < 0 && !(t2i >= SampleQueries && t2i <= SampleQueries+2*Extremes) || i2t != wantI2T {
		t.Errorf("gallery rows: %d text→image (want %d), %d image→text (want %d)", t2i, wantT2I, i2t, wantI2T)
	}
	// Each t2i row: TopImages before and after; each i2t row: TopCaptions.
	if n := eval(`document.querySelectorAll("#t2i .strip figure img").length`); n != 2*TopImages*t2i {
		t.Errorf("%d text→image thumbnails, want %d", n, 2*TopImages*t2i)
	}
	if n := eval(`document.querySelectorAll("#i2t ol.caps li").length`); n != 2*TopCaptions*i2t {
		t.Errorf("%d image→text captions, want %d", n, 2*TopCaptions*i2t)
	}
	// Charts: two Recall@K and four training curves, each drawn (lines,
	// tick labels) and laid out at its size.
	if n := eval(`document.querySelectorAll("#recall svg.chart polyline").length`); n != 2*2 {
		t.Errorf("%d Recall@K lines, want 4", n)
	}
	if n := eval(`document.querySelectorAll("#curves svg.chart").length`); n != 4 {
		t.Errorf("%d training charts, want 4", n)
	}
	if n := eval(`[...document.querySelectorAll("svg.chart")].filter(s => s.getBoundingClientRect().width > 100 && s.querySelectorAll("text").length > 8).length`); n != 6 {
		t.Errorf("%d charts drawn with ticks, want 6", n)
	}
	if n := eval(`document.querySelectorAll("script").length`); n != 0 {
		t.Errorf("%d scripts in the page; it needs none", n)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(t.TempDir(), "report.png"), os.Getenv("CLIPLINE_SCREENSHOT")} {
		if p == "" {
			continue
		}
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s (%d bytes)", p, len(shot))
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Error(p)
	}
}
