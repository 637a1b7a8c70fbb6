// Command serveload is a bounded loopback load test of a running serve:
// --clients goroutines send text queries (POST /search/text) back to back
// for --duration, then it prints the QPS, the latency percentiles and the
// errors. It refuses any address but the loopback's. scripts/bench/serve_load.sh
// runs it against a ViT-B/32-sized model.
//
//	serveload --url http://127.0.0.1:8080 --clients 16 --duration 20s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "serve's address (loopback only)")
	clients := flag.Int("clients", 16, "concurrent clients")
	duration := flag.Duration("duration", 20*time.Second, "how long to send")
	warmup := flag.Duration("warmup", 2*time.Second, "untimed queries first")
	topK := flag.Int("top-k", 10, "top_k of each query")
	token := flag.String("token", os.Getenv("CLIPLINE_TOKEN"), "bearer token, when serve has one")
	flag.Parse()
	u, err := url.Parse(*base)
	if err != nil {
		fail(err)
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		fail(fmt.Errorf("%s is not a loopback address", u.Host))
	}
	queries := texts()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *clients}}
	one := func(ctx context.Context, q string) error {
		req, err := http.NewRequestWithContext(ctx, "POST", fmt.Sprintf("%s/search/text?query=%s&top_k=%d", *base, url.QueryEscape(q), *topK), nil)
		if err != nil {
			return err
		}
		if *token != "" {
			req.Header.Set("Authorization", "Bearer "+*token)
		}
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err == nil && res.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s", res.Status, body)
		}
		return err
	}
	run := func(d time.Duration, record bool) ([]time.Duration, []error, time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		var mu sync.Mutex
		var lat []time.Duration
		var errs []error
		var wg sync.WaitGroup
		start := time.Now()
		for c := range *clients {
			wg.Go(func() {
				for i := c; ctx.Err() == nil; i += *clients {
					t0 := time.Now()
					err := one(ctx, queries[i%len(queries)])
					took := time.Since(t0)
					if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
						return // cut off by the end of the run, not an error
					}
					if record {
						mu.Lock()
						if err != nil {
							errs = append(errs, err)
						} else {
							lat = append(lat, took)
						}
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		return lat, errs, time.Since(start)
	}
	if *warmup > 0 {
		run(*warmup, false)
	}
	lat, errs, took := run(*duration, true)
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	fmt.Printf("serveload: %d clients, %.1fs: %d queries, %.1f QPS, p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms, errors %d\n",
		*clients, took.Seconds(), len(lat), float64(len(lat))/took.Seconds(), pct(0.5), pct(0.9), pct(0.99), pct(1), len(errs))
	for _, e := range errs[:min(len(errs), 5)] {
		fmt.Fprintln(os.Stderr, "serveload: error:", e)
	}
	if len(errs) > 0 {
		os.Exit(1)
	}
}

// texts are short scene descriptions of varied lengths, as users type them.
func texts() []string {
	colours := []string{"red", "blue", "green", "yellow", "purple", "orange", "pink", "black"}
	shapes := []string{"circle", "square", "triangle", "star", "heart", "crescent moon", "cross", "rhombus"}
	styles := []string{"", "striped ", "dotted ", "plain "}
	var out []string
	for i, c := range colours {
		for j, s := range shapes {
			st := styles[(i+j)%len(styles)]
			switch (i + j) % 3 {
			case 0:
				out = append(out, fmt.Sprintf("a %s%s %s", st, c, s))
			case 1:
				out = append(out, fmt.Sprintf("two %s%s %ss on a white background", st, c, s))
			default:
				out = append(out, fmt.Sprintf("a %s%s %s on the left and a %s %s on the right", st, c, s, colours[(i+3)%8], shapes[(j+5)%8]))
			}
		}
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "serveload:", err)
	os.Exit(1)
}
