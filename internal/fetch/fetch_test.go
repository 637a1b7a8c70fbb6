package fetch

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func payload(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func quick() Options {
	return Options{Retries: 2, RetryDelay: time.Millisecond}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func noFile(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("%s should not exist (stat err %v)", p, err)
	}
}

// rangeServer serves data with Range support (net/http's ServeContent) and
// records the Range header and the body bytes it sent.
type rangeServer struct {
	data   []byte
	ranges []string
	sent   atomic.Int64
}

func (s *rangeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	cw := &countingWriter{ResponseWriter: w, n: &s.sent}
	http.ServeContent(cw, r, "f.bin", time.Time{}, bytes.NewReader(s.data))
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return c.ResponseWriter.Write(p)
}

func TestFullDownload(t *testing.T) {
	data := payload(300_000)
	srv := &rangeServer{data: data}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "sub", "f.bin")
	var prog bytes.Buffer
	opts := quick()
	opts.Progress = &prog
	opts.Label = "f.bin"
	if err := File(context.Background(), ts.URL+"/f.bin", dest, opts); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, dest), data) {
		t.Fatal("content differs")
	}
	noFile(t, dest+".part")
	if srv.ranges[0] != "" {
		t.Fatalf("fresh download sent Range %q", srv.ranges[0])
	}
	if !strings.Contains(prog.String(), "100.0%") || !strings.Contains(prog.String(), "MB/s") {
		t.Fatalf("progress output lacks percent/rate: %q", prog.String())
	}
	// Second call: the file is complete, nothing is requested.
	if err := File(context.Background(), ts.URL+"/f.bin", dest, opts); err != nil {
		t.Fatal(err)
	}
	if len(srv.ranges) != 1 {
		t.Fatalf("existing file re-downloaded: %d requests", len(srv.ranges))
	}
}

func TestResumeFromPart(t *testing.T) {
	data := payload(200_000)
	srv := &rangeServer{data: data}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "f.bin")
	const have = 123_456
	if err := os.WriteFile(dest+".part", data[:have], 0o644); err != nil {
		t.Fatal(err)
	}
	opts := quick()
	opts.ExpectedSize = int64(len(data))
	if err := File(context.Background(), ts.URL+"/f.bin", dest, opts); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, dest), data) {
		t.Fatal("resumed content differs")
	}
	if want := "bytes=" + strconv.Itoa(have) + "-"; srv.ranges[0] != want {
		t.Fatalf("Range = %q, want %q", srv.ranges[0], want)
	}
	if got := srv.sent.Load(); got != int64(len(data)-have) {
		t.Fatalf("server sent %d bytes, want only the missing %d", got, len(data)-have)
	}
	noFile(t, dest+".part")
}

func TestServerIgnoresRange(t *testing.T) {
	data := payload(50_000)
	var ranges []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ranges = append(ranges, r.Header.Get("Range"))
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data) // always 200 with the whole body
	}))
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "f.bin")
	// A stale prefix that is not even the right bytes: must be discarded.
	if err := os.WriteFile(dest+".part", bytes.Repeat([]byte{0xAA}, 10_000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := File(context.Background(), ts.URL+"/f.bin", dest, quick()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, dest), data) {
		t.Fatal("content differs after restart")
	}
	if ranges[0] != "bytes=10000-" {
		t.Fatalf("expected a resume attempt, got Range %q", ranges[0])
	}
}

// truncating sends Content-Length for the whole file but only part of it.
func truncating(data []byte, keep int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:keep])
		// Returning early makes net/http close the connection: the client
		// sees an unexpected EOF, as with a dropped download.
	}
}

func TestTruncatedBodyIsError(t *testing.T) {
	data := payload(100_000)
	var calls atomic.Int32
	h := truncating(data, 40_000)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		h(w, r)
	}))
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "f.bin")
	err := File(context.Background(), ts.URL+"/f.bin", dest, quick())
	if err == nil {
		t.Fatal("truncated body accepted")
	}
	for _, want := range []string{ts.URL + "/f.bin", dest, "truncated"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if calls.Load() != 3 {
		t.Errorf("%d requests, want 1 + 2 retries", calls.Load())
	}
	noFile(t, dest)
}

func TestTruncatedThenResumed(t *testing.T) {
	data := payload(100_000)
	srv := &rangeServer{data: data}
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			truncating(data, 30_000)(w, r)
			return
		}
		srv.ServeHTTP(w, r)
	}))
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "f.bin")
	if err := File(context.Background(), ts.URL+"/f.bin", dest, quick()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, dest), data) {
		t.Fatal("content differs")
	}
	if len(srv.ranges) != 1 || srv.ranges[0] != "bytes=30000-" {
		t.Fatalf("retry should resume at 30000, ranges %q", srv.ranges)
	}
}

func TestNotFoundNamesURL(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.NotFound(w, r)
	}))
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "f.bin")
	url := ts.URL + "/missing/f.bin"
	err := File(context.Background(), url, dest, quick())
	if err == nil {
		t.Fatal("404 accepted")
	}
	if !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("error %q should name the URL and status", err)
	}
	if !IsStatus(err, 404) {
		t.Fatalf("IsStatus(err, 404) false for %v", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("404 retried: %d requests", calls.Load())
	}
	noFile(t, dest)
	noFile(t, dest+".part")
}

func TestServerErrorRetried(t *testing.T) {
	data := payload(1000)
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write(data)
	}))
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "f.bin")
	if err := File(context.Background(), ts.URL, dest, quick()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, dest), data) {
		t.Fatal("content differs")
	}
}

func TestExpectedSizeMismatch(t *testing.T) {
	data := payload(1000)
	ts := httptest.NewServer(&rangeServer{data: data})
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "f.bin")
	opts := quick()
	opts.ExpectedSize = 2000
	err := File(context.Background(), ts.URL, dest, opts)
	if err == nil || !strings.Contains(err.Error(), "expected 2000") {
		t.Fatalf("want size error, got %v", err)
	}
	noFile(t, dest)
}

func TestPartAlreadyComplete(t *testing.T) {
	data := payload(5000)
	srv := &rangeServer{data: data}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(dest+".part", data, 0o644); err != nil {
		t.Fatal(err)
	}
	// ServeContent answers bytes=5000- with 416 and "bytes */5000".
	if err := File(context.Background(), ts.URL, dest, quick()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, dest), data) {
		t.Fatal("content differs")
	}
}

func TestParseContentRange(t *testing.T) {
	for _, c := range []struct {
		in               string
		start, end, size int64
		ok               bool
	}{
		{"bytes 10-99/100", 10, 99, 100, true},
		{"bytes 10-99/*", 10, 99, -1, true},
		{"bytes */100", -1, -1, 100, true},
		{"items 1-2/3", -1, -1, -1, false},
		{"bytes x-2/3", -1, -1, -1, false},
	} {
		s, e, z, ok := parseContentRange(c.in)
		if s != c.start || e != c.end || z != c.size || ok != c.ok {
			t.Errorf("%q: got %d %d %d %v", c.in, s, e, z, ok)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{999: "999 B", 1500: "1.50 kB", 4_390_000_000: "4.39 GB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestFailureRemovesCreatedDirs: a failed download leaves no directory it
// created, and keeps the ones that were there; a kept .part keeps its own.
func TestFailureRemovesCreatedDirs(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	defer ts.Close()
	root := t.TempDir()
	dest := filepath.Join(root, "a", "b", "f.bin")
	err := File(context.Background(), ts.URL+"/f.bin", dest, quick())
	var fe *Error
	if !errors.As(err, &fe) || fe.URL != ts.URL+"/f.bin" || fe.Dest != dest || !IsStatus(err, 404) {
		t.Fatalf("want a *Error naming the URL and dest with a 404, got %v", err)
	}
	noFile(t, filepath.Join(root, "a"))
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("the existing parent went too: %v", err)
	}

	data := payload(10_000)
	tr := httptest.NewServer(truncating(data, 4_000))
	defer tr.Close()
	o := quick()
	o.Retries = -1
	if err := File(context.Background(), tr.URL+"/f.bin", dest, o); err == nil {
		t.Fatal("truncated body accepted")
	}
	if st, err := os.Stat(dest + ".part"); err != nil || st.Size() != 4_000 {
		t.Fatalf("the .part to resume from: %v", err)
	}
	noFile(t, dest)
}
