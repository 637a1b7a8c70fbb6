// Package serve is the HTTP search server over index bundles: the tutorial's
// POST /search/text and /search/image, POST /v1/search (weighted text,
// image and more-like-this terms, offset, split filter, timings, a compare
// bundle side by side), the indexed images and their thumbnails, /v1/info,
// /healthz, /metrics, and a reload that swaps in rebuilt bundles.
//
// Text and image encodes of concurrent requests are micro-batched into one
// encoder call (a batcher per model); the batcher's queue is bounded and a
// request that finds it full is answered 503 at once. Scores are the dot
// products of the query's embedding with the bundle's vectors, exactly as
// rank computes them for the same caption over the same images.
package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clipline/clipline/internal/index"
)

// Options configure a Server.
type Options struct {
	Index    string // the images bundle
	Captions string // optional: a captions bundle, for image → text
	Compare  string // optional: an images bundle made with another model (the base)

	Model        Model // encodes queries for Index and Captions
	CompareModel Model // encodes queries for Compare

	ImageRoot string // overrides the image root found in the bundles' provenance

	Token       string        // when set, the API needs Authorization: Bearer TOKEN
	MaxUpload   int64         // bytes of an uploaded image (413 above)
	MaxPixels   int64         // width·height of an uploaded image, from its header (413 above)
	Timeout     time.Duration // per request (503 after it)
	Queue       int           // encodes waiting per model (503 when full)
	BatchWindow time.Duration // how long a batch waits for company
	MaxBatch    int           // texts or images per encoder call
	ThumbCache  int64         // bytes of thumbnails kept in memory

	Web     fs.FS     // the page at GET / (nil: none)
	Version string    // for /v1/info
	Log     io.Writer // reloads and errors; nil for silence
}

// Model is a loaded model and its identity.
type Model struct {
	Enc    Encoder
	Hash   string // modelid.Hash of its directory
	Source string // the --model argument (directory or hub id)
}

// Server answers the API. Its bundles can be swapped by Reload while it
// serves; Close releases everything.
type Server struct {
	o       Options
	met     *metrics
	model   *batcher
	compare *batcher
	cur     atomic.Pointer[state]
	reload  sync.Mutex // one reload at a time
	thumbs  *thumbCache
	handler http.Handler
}

// state is one generation of open bundles. Requests hold mu for reading
// while they use it; a reload swaps in the next state and closes this one
// once the requests using it have finished (Lock waits for them).
type state struct {
	mu                      sync.RWMutex
	closed                  atomic.Bool // set under mu's write lock
	images, captions, other *loaded     // other: the compare bundle
	gen                     int64
}

// New opens the bundles, checks that they were made with the given models,
// and starts the batchers.
func New(o Options) (*Server, error) {
	if o.Index == "" || o.Model.Enc == nil {
		return nil, errors.New("serve: an index and a model are required")
	}
	if (o.Compare == "") != (o.CompareModel.Enc == nil) {
		return nil, errors.New("serve: a compare index needs its model, and only then")
	}
	if o.Queue < 1 || o.MaxBatch < 1 || o.MaxUpload < 1 || o.MaxPixels < 1 || o.Timeout <= 0 {
		return nil, fmt.Errorf("serve: queue %d, max batch %d, max upload %d, max pixels %d and timeout %v must be positive",
			o.Queue, o.MaxBatch, o.MaxUpload, o.MaxPixels, o.Timeout)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	s := &Server{o: o, met: newMetrics(), thumbs: newThumbCache(o.ThumbCache)}
	st, err := s.open(1)
	if err != nil {
		return nil, err
	}
	s.cur.Store(st)
	s.model = newBatcher("model", o.Model.Enc, o.Queue, o.BatchWindow, o.MaxBatch, s.met)
	if o.Compare != "" {
		s.compare = newBatcher("compare", o.CompareModel.Enc, o.Queue, o.BatchWindow, o.MaxBatch, s.met)
	}
	s.handler = s.routes()
	return s, nil
}

// open opens the bundles of Options and checks each against its model.
func (s *Server) open(gen int64) (*state, error) {
	o := s.o
	st := &state{gen: gen}
	ok := false
	defer func() {
		if !ok {
			st.close()
		}
	}()
	var err error
	if st.images, err = s.openChecked(o.Index, index.KindImages, o.Model); err != nil {
		return nil, err
	}
	if o.Captions != "" {
		if st.captions, err = s.openChecked(o.Captions, index.KindCaptions, o.Model); err != nil {
			return nil, err
		}
	}
	if o.Compare != "" {
		if st.other, err = s.openChecked(o.Compare, index.KindImages, o.CompareModel); err != nil {
			return nil, err
		}
	}
	for name, l := range map[string]*loaded{"index": st.images, "captions": st.captions, "compare": st.other} {
		if l != nil {
			s.met.items.WithLabelValues(name).Set(float64(l.b.Len()))
		}
	}
	ok = true
	return st, nil
}

// openChecked opens dir and refuses it unless the model that made it is
// the one serving it (same hash) and the dimensions agree.
func (s *Server) openChecked(dir, kind string, mod Model) (*loaded, error) {
	l, err := load(dir, kind)
	if err != nil {
		return nil, err
	}
	if s.o.ImageRoot != "" {
		l.imageRoot = s.o.ImageRoot
	}
	m := l.m
	switch {
	case m.Model.Hash != mod.Hash:
		err = fmt.Errorf("index %s was built with model %s (%s), not with %s (%s): index the images again with this model, or serve the model that made it",
			dir, orUnknown(m.Model.Source), orUnknown(m.Model.Hash), mod.Source, mod.Hash)
	case m.Dim != mod.Enc.Dim():
		err = fmt.Errorf("index %s has vectors of %d dimensions; model %s embeds %d", dir, m.Dim, mod.Source, mod.Enc.Dim())
	}
	if err != nil {
		l.b.Close()
		return nil, err
	}
	return l, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "(not recorded)"
	}
	return s
}

func (st *state) close() error {
	var errs []error
	for _, l := range []*loaded{st.images, st.captions, st.other} {
		if l != nil {
			errs = append(errs, l.b.Close())
		}
	}
	return errors.Join(errs...)
}

// acquire returns the current state, held for reading until release.
func (s *Server) acquire() *state {
	for {
		st := s.cur.Load()
		st.mu.RLock()
		if !st.closed.Load() {
			return st
		}
		st.mu.RUnlock() // swapped and closed meanwhile: take the new one
	}
}

func (st *state) release() { st.mu.RUnlock() }

// Reload reopens the bundles and swaps them in atomically: requests that
// started before keep the old ones, which are closed once they finish. On
// any error the old bundles stay. It returns the new state's counts.
func (s *Server) Reload() (map[string]int, error) {
	s.reload.Lock()
	defer s.reload.Unlock()
	old := s.cur.Load()
	st, err := s.open(old.gen + 1)
	if err != nil {
		s.met.reloads.WithLabelValues("error").Inc()
		fmt.Fprintf(s.o.Log, "serve: reload failed, still serving the previous bundles: %v\n", err)
		return nil, err
	}
	s.cur.Store(st)
	s.met.reloads.WithLabelValues("ok").Inc()
	go func() {
		old.mu.Lock() // waits for the requests holding it
		old.closed.Store(true)
		err := old.close()
		old.mu.Unlock()
		if err != nil {
			fmt.Fprintf(s.o.Log, "serve: closing the previous bundles: %v\n", err)
		}
	}()
	counts := map[string]int{}
	var say []string
	for _, b := range []struct {
		name string
		l    *loaded
	}{{"index", st.images}, {"captions", st.captions}, {"compare", st.other}} {
		if b.l != nil {
			counts[b.name] = b.l.b.Len()
			say = append(say, fmt.Sprintf("%s %s: %d rows", b.name, b.l.dir, b.l.b.Len()))
		}
	}
	fmt.Fprintf(s.o.Log, "serve: reloaded (generation %d): %s\n", st.gen, strings.Join(say, ", "))
	return counts, nil
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish (for at most grace), and
// returns. Close the Server afterwards.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		// A request's own deadline is Options.Timeout; reading its body
		// and writing its answer get that much again.
		ReadTimeout:  2*s.o.Timeout + 10*time.Second,
		WriteTimeout: 2*s.o.Timeout + 10*time.Second,
		IdleTimeout:  2 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("requests still running after %v; closed them", grace)
		hs.Close()
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// Close stops the batchers and closes the bundles; requests must have
// finished (Serve has returned).
func (s *Server) Close() error {
	s.model.stop()
	if s.compare != nil {
		s.compare.stop()
	}
	st := s.cur.Load()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed.Load() {
		return nil
	}
	st.closed.Store(true)
	return st.close()
}
