package serve

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpError is an error answered with its status code and message.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code, fmt.Sprintf(format, args...)}
}

// apiFunc is a handler that returns its error instead of writing it.
type apiFunc func(w http.ResponseWriter, r *http.Request) error

// access says who may call an endpoint when the server has a token.
type access int

const (
	public access = iota // /healthz and the page: no data
	private
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(methods, pattern string, a access, h apiFunc) {
		for _, m := range strings.Split(methods, ",") {
			mux.Handle(m+" "+pattern, s.api(a, h))
		}
		// The same path with another method: a JSON 405, not the mux's text.
		mux.Handle(pattern, s.api(public, func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Allow", strings.ReplaceAll(methods, ",", ", "))
			return errorf(http.StatusMethodNotAllowed, "%s %s: use %s", r.Method, pattern, strings.ReplaceAll(methods, ",", " or "))
		}))
	}
	handle("GET", "/healthz", public, s.healthz)
	handle("GET", "/metrics", private, func(w http.ResponseWriter, r *http.Request) error {
		promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
		return nil
	})
	handle("GET", "/v1/info", private, s.info)
	handle("POST", "/v1/search", private, s.searchJSON)
	handle("POST", "/v1/admin/reload", private, s.reloadHandler)
	handle("GET", "/v1/images/{image_id}", private, s.image)
	handle("GET,POST", "/search/text", private, s.searchText)
	handle("GET,POST", "/search/image", private, s.searchImage)
	notFound := s.api(public, func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "no endpoint %s %s", r.Method, r.URL.Path)
	})
	mux.Handle("/v1/", notFound)
	mux.Handle("/search/", notFound)
	mux.Handle("/", s.api(public, s.page))
	return s.observe(mux)
}

// observe counts and times every request by its route pattern, bounds it
// by the request timeout, refuses unclean paths and answers a panic with
// a 500 instead of dropping the connection.
func (s *Server) observe(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, code: http.StatusOK}
		ctx, cancel := context.WithTimeout(r.Context(), s.o.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				fmt.Fprintf(s.o.Log, "serve: panic in %s %s: %v\n%s", r.Method, r.URL.Path, p, debug.Stack())
				if !rec.wrote {
					writeError(rec, errorf(http.StatusInternalServerError, "internal error (logged by the server)"))
				}
			}
			ep := r.Pattern
			if ep == "" {
				ep = "unmatched"
			}
			s.met.requests.WithLabelValues(ep, strconv.Itoa(rec.code)).Inc()
			s.met.latency.WithLabelValues(ep).Observe(time.Since(start).Seconds())
		}()
		// No "." or ".." segments, however encoded: the mux would redirect
		// them to the cleaned path; a traversal attempt gets a plain 404.
		if p := r.URL.Path; p != "/" && (path.Clean(p) != strings.TrimSuffix(p, "/") || strings.Contains(p, "//")) {
			writeError(rec, errorf(http.StatusNotFound, "no such path"))
			return
		}
		mux.ServeHTTP(rec, r)
	})
}

// recorder keeps the status code for the metrics.
type recorder struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// api adapts an apiFunc: the token check, then the handler, its error
// written as JSON.
func (s *Server) api(a access, h apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a == private && s.o.Token != "" && !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="clipline"`)
			writeError(w, errorf(http.StatusUnauthorized, "missing or wrong token: send Authorization: Bearer TOKEN (serve --token)"))
			return
		}
		if err := h(w, r); err != nil {
			s.writeErr(w, r, err)
		}
	})
}

func (s *Server) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(s.o.Token)) == 1
}

// writeErr maps err to a status: its own (httpError), 413 for a body over
// the limit, 503 for a full queue or the request's timeout, else 500.
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
	case errors.As(err, &mbe):
		err = errorf(http.StatusRequestEntityTooLarge, "the request body is over %d bytes (serve --max-upload %s)", mbe.Limit, formatBytes(s.o.MaxUpload))
	case errors.Is(err, errBusy):
		w.Header().Set("Retry-After", "1")
		err = errorf(http.StatusServiceUnavailable, "%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		err = errorf(http.StatusServiceUnavailable, "the request took longer than %v (serve --timeout)", s.o.Timeout)
	case errors.Is(err, context.Canceled):
		err = errorf(http.StatusServiceUnavailable, "the request was cancelled")
	default:
		fmt.Fprintf(s.o.Log, "serve: %s %s: %v\n", r.Method, r.URL.Path, err)
		err = errorf(http.StatusInternalServerError, "%v", err)
	}
	writeError(w, err)
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		code = he.code
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func formatBytes(n int64) string {
	switch {
	case n >= 1e6 && n%1e6 == 0:
		return fmt.Sprintf("%dMB", n/1e6)
	case n >= 1e3 && n%1e3 == 0:
		return fmt.Sprintf("%dkB", n/1e3)
	}
	return fmt.Sprintf("%dB", n)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// page serves the web page's files; anything else is a 404.
func (s *Server) page(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errorf(http.StatusMethodNotAllowed, "%s %s: the page takes GET", r.Method, r.URL.Path)
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "" {
		name = "index.html"
	}
	if s.o.Web == nil {
		return errorf(http.StatusNotFound, "this server has no web page")
	}
	if st, err := fs.Stat(s.o.Web, name); err != nil || st.IsDir() {
		return errorf(http.StatusNotFound, "no such page %s", r.URL.Path)
	}
	http.ServeFileFS(w, r, s.o.Web, name)
	return nil
}
