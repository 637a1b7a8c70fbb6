package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clipline/clipline/internal/embed"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/index"
)

// Limits of a query.
const (
	MaxTopK   = 1000
	MaxOffset = 100000
	MaxTerms  = 16
	// relevantDepth is how deep a caption query of the indexed data looks
	// for its first relevant image when it is not in the page asked for.
	relevantDepth = 1000
)

// Request is POST /v1/search's body. text, image and image_id are
// shorthands for one term of weight 1 each; terms is the general form.
type Request struct {
	Text    string `json:"text,omitempty"`
	Image   string `json:"image,omitempty"` // base64 of an image file
	ImageID string `json:"image_id,omitempty"`
	Terms   []Term `json:"terms,omitempty"`
	TopK    *int   `json:"top_k,omitempty"` // 1..1000, default 10
	Offset  int    `json:"offset,omitempty"`
	Split   string `json:"split,omitempty"`  // only rows of this split
	Target  string `json:"target,omitempty"` // "images" (default) or "captions" (serve --captions-index)
	// Compare asks for the compare bundle's results too (default: when
	// the server has one).
	Compare *bool `json:"compare,omitempty"`
}

// Term is one weighted part of a query: its embedding times weight is
// added to the query vector (a negative weight subtracts).
type Term struct {
	Text    string   `json:"text,omitempty"`
	Image   string   `json:"image,omitempty"`
	ImageID string   `json:"image_id,omitempty"`
	Weight  *float64 `json:"weight,omitempty"` // default 1
}

// Result is one ranked row.
type Result struct {
	Rank      int      `json:"rank"`
	ImageID   string   `json:"image_id"`
	Score     float32  `json:"score"`
	ImagePath string   `json:"image_path"`
	Captions  []string `json:"captions"`
	Caption   string   `json:"caption,omitempty"` // a captions bundle's row
	Split     string   `json:"split,omitempty"`
}

// Response is the answer of every search endpoint.
type Response struct {
	Results []Result `json:"results"`
	// Compare: the compare bundle's results for the same query, when the
	// server has one (serve --compare).
	Compare []Result `json:"compare,omitempty"`
	// Relevant: for a text query that is a caption of the indexed data,
	// the images holding it, and the rank of the first one in each list
	// (absent when not within the first 1000).
	Relevant          []string       `json:"relevant,omitempty"`
	FirstRelevantRank map[string]int `json:"first_relevant_rank,omitempty"`
	Total             int            `json:"total"` // rows searched (after the split filter)
	Timings           Timings        `json:"timings"`
}

// Timings are per step, in milliseconds. Texts of concurrent requests are
// encoded in one batch, whose whole time each of them reports.
type Timings struct {
	Queue         float64 `json:"queue_ms"`
	Tokenize      float64 `json:"tokenize_ms"`
	Encode        float64 `json:"encode_ms"`
	Search        float64 `json:"search_ms"`
	CompareEncode float64 `json:"compare_encode_ms,omitempty"`
	CompareSearch float64 `json:"compare_search_ms,omitempty"`
	Total         float64 `json:"total_ms"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())) / 1000 }

// query is a validated request.
type query struct {
	terms         []term
	topK, offset  int
	split, target string
	compare       bool
}

type term struct {
	text, imageID string
	image         []byte
	weight        float32
}

// searchText is the tutorial's POST /search/text?query=TEXT&top_k=K.
func (s *Server) searchText(w http.ResponseWriter, r *http.Request) error {
	q, err := s.formQuery(r)
	if err != nil {
		return err
	}
	text := r.FormValue("query")
	if text == "" {
		return errorf(http.StatusBadRequest, "missing query: give ?query=TEXT")
	}
	q.terms = []term{{text: text, weight: 1}}
	return s.answer(w, r, q)
}

// searchImage is the tutorial's POST /search/image?top_k=K with a
// multipart form whose field "file" is the image.
func (s *Server) searchImage(w http.ResponseWriter, r *http.Request) error {
	q, err := s.formQuery(r)
	if err != nil {
		return err
	}
	data, err := s.uploadedFile(r)
	if err != nil {
		return err
	}
	q.terms = []term{{image: data, weight: 1}}
	return s.answer(w, r, q)
}

// formQuery reads top_k, offset and split from the URL.
func (s *Server) formQuery(r *http.Request) (query, error) {
	v := r.URL.Query()
	q := query{topK: 10, split: v.Get("split"), target: index.KindImages, compare: true}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"top_k", &q.topK}, {"offset", &q.offset}} {
		if s := v.Get(p.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return q, errorf(http.StatusBadRequest, "%s=%q is not an integer", p.name, s)
			}
			*p.dst = n
		}
	}
	return q, nil
}

// uploadedFile reads the multipart field "file", at most MaxUpload bytes.
func (s *Server) uploadedFile(r *http.Request) ([]byte, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, s.o.MaxUpload+64<<10) // the form's own bytes besides
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "want a multipart/form-data body with the image in field \"file\": %v", err)
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, errorf(http.StatusBadRequest, "missing the multipart field \"file\" (the image)")
		}
		if err != nil {
			return nil, uploadErr(err)
		}
		if p.FormName() != "file" {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(p, s.o.MaxUpload+1))
		if err != nil {
			return nil, uploadErr(err)
		}
		if int64(len(data)) > s.o.MaxUpload {
			return nil, errorf(http.StatusRequestEntityTooLarge, "the image is over --max-upload %s", formatBytes(s.o.MaxUpload))
		}
		return data, s.checkImage(data)
	}
}

func uploadErr(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return errorf(http.StatusBadRequest, "reading the upload: %v", err)
}

// checkImage refuses what is not an image of a known format, or whose
// header says it has more than MaxPixels pixels (before decoding it: a
// small file can claim a huge image).
func (s *Server) checkImage(data []byte) error {
	if len(data) == 0 {
		return errorf(http.StatusBadRequest, "the image is empty")
	}
	format := imageproc.Format(data)
	if format == "" {
		return errorf(http.StatusUnsupportedMediaType, "not an image: want JPEG, PNG, GIF, WebP or BMP")
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return errorf(http.StatusBadRequest, "unreadable %s header: %v", format, err)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > s.o.MaxPixels {
		return errorf(http.StatusRequestEntityTooLarge, "the %s is %dx%d = %d pixels, more than --max-pixels %d", format, cfg.Width, cfg.Height, px, s.o.MaxPixels)
	}
	return nil
}

// searchJSON is POST /v1/search.
func (s *Server) searchJSON(w http.ResponseWriter, r *http.Request) error {
	// base64 is 4/3 of the image, plus the JSON around it.
	r.Body = http.MaxBytesReader(nil, r.Body, s.o.MaxUpload/3*4+64<<10)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	var req Request
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errorf(http.StatusBadRequest, "the body is not a search request (JSON with text, image, image_id or terms): %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "the body holds more than one JSON value")
	}
	q := query{topK: 10, offset: req.Offset, split: req.Split, target: req.Target, compare: true}
	if req.TopK != nil {
		q.topK = *req.TopK
	}
	if req.Compare != nil {
		q.compare = *req.Compare
	}
	if q.target == "" {
		q.target = index.KindImages
	}
	terms := req.Terms
	for _, t := range []Term{{Text: req.Text}, {Image: req.Image}, {ImageID: req.ImageID}} {
		if t != (Term{}) {
			terms = append(terms, t)
		}
	}
	if len(terms) == 0 {
		return errorf(http.StatusBadRequest, "missing query: give text, image (base64), image_id or terms")
	}
	if len(terms) > MaxTerms {
		return errorf(http.StatusBadRequest, "%d terms; at most %d", len(terms), MaxTerms)
	}
	for i, t := range terms {
		qt, err := s.parseTerm(t)
		if err != nil {
			if len(terms) > 1 {
				var he *httpError
				if errors.As(err, &he) {
					he.msg = fmt.Sprintf("term %d: %s", i+1, he.msg)
				}
			}
			return err
		}
		q.terms = append(q.terms, qt)
	}
	return s.answer(w, r, q)
}

func (s *Server) parseTerm(t Term) (term, error) {
	qt := term{text: t.Text, imageID: t.ImageID, weight: 1}
	n := 0
	for _, set := range []bool{t.Text != "", t.Image != "", t.ImageID != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return qt, errorf(http.StatusBadRequest, "a term has exactly one of text, image and image_id")
	}
	if t.Weight != nil {
		w := *t.Weight
		if w == 0 || math.IsNaN(w) || math.IsInf(w, 0) || math.Abs(w) > 1e6 {
			return qt, errorf(http.StatusBadRequest, "weight %v: want a non-zero number", w)
		}
		qt.weight = float32(w)
	}
	if t.Image != "" {
		if int64(base64.StdEncoding.DecodedLen(len(t.Image))) > s.o.MaxUpload+2 {
			return qt, errorf(http.StatusRequestEntityTooLarge, "the image is over --max-upload %s", formatBytes(s.o.MaxUpload))
		}
		// A data URL (what a browser's FileReader gives) is taken as well.
		b64 := t.Image
		if rest, ok := strings.CutPrefix(b64, "data:"); ok {
			if _, after, ok := strings.Cut(rest, ";base64,"); ok {
				b64 = after
			}
		}
		data, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return qt, errorf(http.StatusBadRequest, "image is not base64: %v", err)
		}
		if int64(len(data)) > s.o.MaxUpload {
			return qt, errorf(http.StatusRequestEntityTooLarge, "the image is over --max-upload %s", formatBytes(s.o.MaxUpload))
		}
		if err := s.checkImage(data); err != nil {
			return qt, err
		}
		qt.image = data
	}
	return qt, nil
}

// answer runs q on the current bundles and writes the response.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, q query) error {
	start := time.Now()
	st := s.acquire()
	defer st.release()
	resp, err := s.run(r.Context(), st, q)
	if err != nil {
		return err
	}
	resp.Timings.Total = ms(time.Since(start))
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) run(ctx context.Context, st *state, q query) (*Response, error) {
	if q.topK < 1 || q.topK > MaxTopK {
		return nil, errorf(http.StatusBadRequest, "top_k %d is out of range: want 1 to %d", q.topK, MaxTopK)
	}
	if q.offset < 0 || q.offset > MaxOffset {
		return nil, errorf(http.StatusBadRequest, "offset %d is out of range: want 0 to %d", q.offset, MaxOffset)
	}
	target := st.images
	switch q.target {
	case index.KindImages:
	case index.KindCaptions:
		if st.captions == nil {
			return nil, errorf(http.StatusBadRequest, "target captions needs a captions index (serve --captions-index DIR)")
		}
		target = st.captions
	default:
		return nil, errorf(http.StatusBadRequest, "target %q: want images or captions", q.target)
	}
	if q.split != "" && target.splits[q.split] == nil {
		return nil, errorf(http.StatusBadRequest, "split %q is not in the index; it has %v", q.split, target.splitNames())
	}
	for _, t := range q.terms {
		if t.imageID != "" {
			if _, ok := st.images.b.RowOf(t.imageID); !ok {
				return nil, errorf(http.StatusNotFound, "image_id %q is not in the index", t.imageID)
			}
		}
	}

	resp := &Response{}
	// The relevance of a caption query, as rank defines it.
	var relevant []int32
	if len(q.terms) == 1 && q.terms[0].text != "" && q.target == index.KindImages {
		relevant = st.images.byCaption[q.terms[0].text]
		for _, r := range relevant {
			resp.Relevant = append(resp.Relevant, st.images.b.Item(r).ImageID)
		}
	}

	var other *Response
	var otherErr error
	var wg sync.WaitGroup
	if q.compare && st.other != nil && q.target == index.KindImages {
		wg.Go(func() {
			other, otherErr = s.runOne(ctx, s.compare, s.o.CompareModel.Enc, st.other, st.other, q, st.other.byCaption[q.text()])
		})
	}
	main, err := s.runOne(ctx, s.model, s.o.Model.Enc, st.images, target, q, relevant)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	resp.Results, resp.Total, resp.Timings = main.Results, main.Total, main.Timings
	if rank, ok := main.FirstRelevantRank["results"]; ok {
		resp.FirstRelevantRank = map[string]int{"results": rank}
	}
	if other != nil || otherErr != nil {
		if otherErr != nil {
			return nil, fmt.Errorf("compare index: %w", otherErr)
		}
		resp.Compare = other.Results
		if resp.Compare == nil {
			resp.Compare = []Result{}
		}
		resp.Timings.CompareEncode, resp.Timings.CompareSearch = other.Timings.Encode, other.Timings.Search
		if rank, ok := other.FirstRelevantRank["results"]; ok {
			if resp.FirstRelevantRank == nil {
				resp.FirstRelevantRank = map[string]int{}
			}
			resp.FirstRelevantRank["compare"] = rank
		}
	}
	if resp.Results == nil {
		resp.Results = []Result{}
	}
	return resp, nil
}

func (q query) text() string {
	if len(q.terms) == 1 {
		return q.terms[0].text
	}
	return ""
}

// runOne encodes q with one model (images: its images bundle, for image_id
// terms) and searches target.
func (s *Server) runOne(ctx context.Context, bt *batcher, enc Encoder, images, target *loaded, q query, relevant []int32) (*Response, error) {
	resp := &Response{}
	vec, err := s.queryVector(ctx, bt, enc, images, q.terms, &resp.Timings)
	if err != nil {
		return nil, err
	}
	var keep func(int32) bool
	resp.Total = target.b.Len()
	if q.split != "" {
		in := target.splits[q.split]
		if in == nil { // the compare bundle may lack it
			resp.Total = 0
			return resp, nil
		}
		keep = func(r int32) bool { return in.rows[r] }
		resp.Total = in.n
	}
	k := q.offset + q.topK
	if len(relevant) > 0 {
		k = max(k, relevantDepth)
	}
	t0 := time.Now()
	hits, err := target.b.Gallery.Search(vec, k, keep)
	resp.Timings.Search = ms(time.Since(t0))
	if err != nil {
		return nil, err
	}
	list := hits[0]
	if len(relevant) > 0 {
		isRel := map[int32]bool{}
		for _, r := range relevant {
			isRel[r] = true
		}
		for i, h := range list {
			if isRel[h.Row] {
				resp.FirstRelevantRank = map[string]int{"results": i + 1}
				break
			}
		}
	}
	list = list[min(q.offset, len(list)):min(q.offset+q.topK, len(list))]
	for i, h := range list {
		it := target.b.Item(h.Row)
		caps := it.Captions
		if caps == nil {
			caps = []string{}
		}
		resp.Results = append(resp.Results, Result{Rank: q.offset + i + 1, ImageID: it.ImageID, Score: h.Score,
			ImagePath: it.ImagePath, Captions: caps, Caption: it.Caption, Split: it.Split})
	}
	return resp, nil
}

// queryVector is the terms' embeddings summed with their weights and
// scaled to unit length; one term of weight 1 is its embedding as it is,
// so that its scores are exactly the embedding's dot products.
func (s *Server) queryVector(ctx context.Context, bt *batcher, enc Encoder, images *loaded, terms []term, tm *Timings) ([]float32, error) {
	vecs := make([][]float32, len(terms))
	errs := make([]error, len(terms))
	var mu sync.Mutex
	var wg sync.WaitGroup
	var tokenize time.Duration // summed as a duration: sums of rounded ms show float noise
	defer func() { tm.Tokenize = ms(tokenize) }()
	for i, t := range terms {
		if t.imageID != "" {
			row, ok := images.b.RowOf(t.imageID)
			if !ok {
				return nil, errorf(http.StatusNotFound, "image_id %q is not in the index %s", t.imageID, images.dir)
			}
			vecs[i] = images.b.Gallery.Vector(row, nil)
			continue
		}
		var ids []int32
		if t.text != "" {
			t0 := time.Now()
			var err error
			if ids, err = enc.Tokenize([]string{t.text}); err != nil {
				return nil, err
			}
			tokenize += time.Since(t0)
		}
		wg.Go(func() {
			e, err := bt.submit(ctx, ids, t.image)
			if err != nil {
				errs[i] = err
				return
			}
			vecs[i] = e.vec
			mu.Lock()
			tm.Queue, tm.Encode = max(tm.Queue, ms(e.queued)), max(tm.Encode, ms(e.encode))
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if len(terms) == 1 && terms[0].weight == 1 {
		return vecs[0], nil
	}
	q := make([]float32, enc.Dim())
	for i, v := range vecs {
		for j, x := range v {
			q[j] += terms[i].weight * x
		}
	}
	var n float64
	for _, x := range q {
		n += float64(x) * float64(x)
	}
	if !(n > 1e-12) {
		return nil, errorf(http.StatusBadRequest, "the weighted terms cancel out (their sum is zero)")
	}
	embed.L2Normalize(q)
	return q, nil
}
