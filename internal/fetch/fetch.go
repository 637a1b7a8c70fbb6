// Package fetch downloads a URL to a file, the way large model and dataset
// files need it: bytes go to DEST.part, an interrupted download resumes from
// there with an HTTP Range request, the size is checked against the server's
// Content-Length (and an expected size when the caller knows one), transient
// failures are retried, and only a complete file is renamed to DEST. A file
// at DEST is therefore always whole, and a failure leaves no directory that
// File created unless it holds the DEST.part to resume from.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options tune a download. The zero value is usable.
type Options struct {
	// Client defaults to a client with no overall timeout (files are large)
	// but a connect and response-header timeout.
	Client *http.Client
	// ExpectedSize, when > 0, must equal the final size; a server reporting
	// another size is an error before any byte is written.
	ExpectedSize int64
	// Header is added to every request (e.g. Authorization for gated repos).
	Header http.Header
	// Progress receives the progress bar; nil means none. Pass os.Stderr for
	// the usual bar (redrawn in place on a terminal, a line every few
	// seconds otherwise).
	Progress io.Writer
	// Label names the download in the progress bar; default the file name.
	Label string
	// Retries is the number of extra attempts after a transient failure
	// (network error, truncated body, 408, 429, 5xx); default 4, -1 for none.
	Retries int
	// RetryDelay is the first backoff, doubled each attempt; default 1s.
	RetryDelay time.Duration
}

// CacheRoot is where clipline keeps downloads: $CLIPLINE_CACHE, else
// clipline/ in the user cache directory (~/.cache/clipline on Linux).
func CacheRoot() string {
	if d := os.Getenv("CLIPLINE_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "clipline")
	}
	return filepath.Join(os.TempDir(), "clipline-cache")
}

// HTTPError is a non-success status from the server.
type HTTPError struct {
	URL        string
	StatusCode int
	Status     string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("GET %s: %s", e.URL, e.Status)
}

// Error is a failed download: which URL, to which file, and why.
type Error struct {
	URL, Dest string
	Err       error
}

func (e *Error) Error() string { return fmt.Sprintf("download %s to %s: %v", e.URL, e.Dest, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// IsStatus reports whether err is (or wraps) an HTTPError with that status code.
func IsStatus(err error, code int) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.StatusCode == code
}

// DefaultClient is used when Options.Client is nil.
var DefaultClient = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
		// Transparent gzip would make Range offsets refer to the wrong bytes.
		DisableCompression: true,
	},
}

// File downloads url to dest. If dest already exists it is taken as complete
// (it only ever appears by rename of a finished download) unless
// ExpectedSize is set and differs, in which case it is fetched again.
// Errors are *Error.
func File(ctx context.Context, url, dest string, opts Options) error {
	created, err := MkdirAll(filepath.Dir(dest))
	if err != nil {
		return &Error{url, dest, err}
	}
	if err := file(ctx, url, dest, opts); err != nil {
		RemoveEmpty(created) // unless a .part is kept to resume from
		return &Error{url, dest, err}
	}
	return nil
}

// MkdirAll is os.MkdirAll that returns the directories it created, deepest
// first, for RemoveEmpty.
func MkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		missing = append(missing, d)
	}
	return missing, os.MkdirAll(dir, 0o755)
}

// RemoveEmpty removes dirs (deepest first) while they are empty (or gone).
func RemoveEmpty(dirs []string) {
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
			return
		}
	}
}

func file(ctx context.Context, url, dest string, opts Options) error {
	if opts.Client == nil {
		opts.Client = DefaultClient
	}
	if opts.Retries == 0 {
		opts.Retries = 4
	} else if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = time.Second
	}
	if opts.Label == "" {
		opts.Label = filepath.Base(dest)
	}
	if st, err := os.Stat(dest); err == nil {
		if !st.Mode().IsRegular() {
			return errors.New("it exists and is not a regular file")
		}
		if opts.ExpectedSize <= 0 || st.Size() == opts.ExpectedSize {
			return nil
		}
		// A stale or different file: fetch again rather than trust it.
		if err := os.Remove(dest); err != nil {
			return fmt.Errorf("remove stale file: %w", err)
		}
	}
	part := dest + ".part"
	var err error
	for attempt := 0; ; attempt++ {
		err = once(ctx, url, part, opts)
		if err == nil {
			break
		}
		if attempt >= opts.Retries || !transient(err) || ctx.Err() != nil {
			return err
		}
		delay := opts.RetryDelay << attempt
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "\n%s: %v; retrying in %s (%d/%d)\n", opts.Label, err, delay, attempt+1, opts.Retries)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
	return os.Rename(part, dest)
}

// sizeError is a size mismatch that retrying the same request would not fix.
type sizeError struct{ msg string }

func (e *sizeError) Error() string { return e.msg }

// truncatedError is a body that ended before its announced length: the
// connection dropped, so a retry (resuming) is worthwhile.
type truncatedError struct{ got, want int64 }

func (e *truncatedError) Error() string {
	return fmt.Sprintf("body truncated: have %d of %d bytes", e.got, e.want)
}

// once makes one request, appending to part (resuming if it has bytes) and
// returns nil when part holds the whole file.
func once(ctx context.Context, url, part string, opts Options) error {
	var have int64
	if st, err := os.Stat(part); err == nil {
		have = st.Size()
	}
	if opts.ExpectedSize > 0 && have > opts.ExpectedSize {
		// Cannot be a prefix of the right file.
		have = 0
		if err := os.Remove(part); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	for k, vs := range opts.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Accept-Encoding", "identity")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "clipline")
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := opts.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()

	var total int64 = -1 // final file size, -1 unknown
	flag := os.O_WRONLY | os.O_CREATE
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, end, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			// A range we did not ask for: start over rather than splice.
			return restart(part, fmt.Errorf("unexpected Content-Range %q for a resume at byte %d", resp.Header.Get("Content-Range"), have))
		}
		if size >= 0 {
			total = size
		} else if end >= 0 {
			total = end + 1
		}
		flag |= os.O_APPEND
	case resp.StatusCode == http.StatusOK:
		// Full body: the server ignored Range (or there was none). Restart.
		have = 0
		if resp.ContentLength >= 0 {
			total = resp.ContentLength
		}
		flag |= os.O_TRUNC
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		// Either part is already complete or it is longer than the file.
		_, _, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if ok && size == have && (opts.ExpectedSize <= 0 || size == opts.ExpectedSize) {
			return nil
		}
		return restart(part, fmt.Errorf("server refused resume at byte %d (%s)", have, resp.Status))
	default:
		return &HTTPError{URL: url, StatusCode: resp.StatusCode, Status: resp.Status}
	}
	if opts.ExpectedSize > 0 && total >= 0 && total != opts.ExpectedSize {
		return &sizeError{fmt.Sprintf("server reports %d bytes, expected %d", total, opts.ExpectedSize)}
	}
	if total < 0 && opts.ExpectedSize > 0 {
		total = opts.ExpectedSize
	}

	f, err := os.OpenFile(part, flag, 0o644)
	if err != nil {
		return err
	}
	bar := newBar(opts.Progress, opts.Label, have, total)
	n, copyErr := io.Copy(f, io.TeeReader(resp.Body, bar))
	bar.finish()
	syncErr := f.Sync()
	closeErr := f.Close()
	got := have + n
	if copyErr != nil {
		if total >= 0 && got < total {
			return fmt.Errorf("%w: %v", &truncatedError{got, total}, copyErr)
		}
		return copyErr
	}
	if syncErr != nil {
		return syncErr
	}
	if closeErr != nil {
		return closeErr
	}
	if total >= 0 && got < total {
		return &truncatedError{got, total}
	}
	if total >= 0 && got > total {
		return restart(part, &sizeError{fmt.Sprintf("received %d bytes, more than the announced %d", got, total)})
	}
	return nil
}

// restart removes the partial file and returns err, so the next attempt
// starts from byte 0.
func restart(part string, err error) error {
	if rmErr := os.Remove(part); rmErr != nil && !os.IsNotExist(rmErr) {
		return fmt.Errorf("%v (and removing %s: %v)", err, part, rmErr)
	}
	return &restartError{err}
}

// restartError is retried: the partial file was discarded.
type restartError struct{ err error }

func (e *restartError) Error() string { return e.err.Error() }
func (e *restartError) Unwrap() error { return e.err }

// parseContentRange parses "bytes START-END/SIZE" or "bytes */SIZE"; -1
// marks an unknown part.
func parseContentRange(s string) (start, end, size int64, ok bool) {
	start, end, size = -1, -1, -1
	s, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return
	}
	rng, sz, found := strings.Cut(s, "/")
	if !found {
		return
	}
	if sz != "*" {
		v, err := strconv.ParseInt(sz, 10, 64)
		if err != nil {
			return
		}
		size = v
	}
	if rng != "*" {
		a, b, found := strings.Cut(rng, "-")
		if !found {
			return
		}
		var err1, err2 error
		start, err1 = strconv.ParseInt(a, 10, 64)
		end, err2 = strconv.ParseInt(b, 10, 64)
		if err1 != nil || err2 != nil {
			return -1, -1, -1, false
		}
	}
	return start, end, size, true
}

// transient reports whether another attempt may succeed.
func transient(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		c := he.StatusCode
		return c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500
	}
	var se *sizeError
	if errors.As(err, &se) {
		var re *restartError
		return errors.As(err, &re)
	}
	var te *truncatedError
	var re *restartError
	if errors.As(err, &te) || errors.As(err, &re) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE)
}
