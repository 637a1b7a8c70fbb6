// Package embed turns pixels and caption token ids into CLIP embeddings: the
// logic of the embed stage and of the public clip package.
//
// An Embedder wraps a loaded model, its preprocessing (mean/std from
// preprocessor_config.json) and one inference plan per tower, allocated on
// first use. Images and Texts embed flat host arrays in batches of
// Options.BatchSize; Run embeds a whole clipline stream, packing the images
// and captions of consecutive rows into full batches regardless of where rows
// and record batches begin and end.
//
// Output vectors are the model's projections, cut to Options.Dim dimensions
// (Matryoshka) and then L2-normalised unless Options.NoNormalize is set.
// Normalisation happens after the cut, so a cut embedding is a unit vector too.
// A zero vector stays zero.
package embed

import (
	"fmt"
	"math"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/model"
)

// DefaultBatchSize is the number of images or captions per forward pass.
const DefaultBatchSize = 64

// Options configure an Embedder.
type Options struct {
	BatchSize   int  // images or captions per forward pass (0: DefaultBatchSize)
	Dim         int  // keep the first Dim dimensions (0: all of projection_dim)
	NoNormalize bool // keep raw projections instead of L2-normalising
}

// Embedder computes embeddings with one model. It is not safe for concurrent
// use (the plans and host buffers are shared between calls).
type Embedder struct {
	m    *model.Model
	be   backend.Backend
	pre  imageproc.Config
	opts Options
	dir  string // the checkpoint Load read ("" for New)
	full int    // projection_dim D
	dim  int    // output width, <= D

	vp   *model.VisionPlan
	tp   *model.TextPlan
	host []float32       // [B, D]: a forward's output downloaded
	norm [3][256]float32 // pre as a table, applied on the backend
}

// Load reads the checkpoint in dir (config.json, model.safetensors and,
// when present, preprocessor_config.json) into be.
func Load(dir string, be backend.Backend, opts Options) (*Embedder, error) {
	m, err := model.Load(dir, be)
	if err != nil {
		return nil, err
	}
	pre, err := imageproc.ForModel(dir, m.Config().Vision.ImageSize)
	if err != nil {
		m.Free()
		return nil, err
	}
	e, err := New(m, pre, opts)
	if err != nil {
		m.Free()
		return nil, err
	}
	e.dir = dir
	return e, nil
}

// New wraps a model; pre supplies the mean and std applied to pixels.
func New(m *model.Model, pre imageproc.Config, opts Options) (*Embedder, error) {
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.BatchSize < 0 {
		return nil, fmt.Errorf("batch size %d must be positive", opts.BatchSize)
	}
	D := m.Config().ProjectionDim
	dim := D
	if opts.Dim != 0 {
		if opts.Dim < 0 || opts.Dim > D {
			return nil, fmt.Errorf("--dim %d: the model's embeddings have %d dimensions (projection_dim); want 1 to %d", opts.Dim, D, D)
		}
		dim = opts.Dim
	}
	return &Embedder{m: m, be: m.Backend(), pre: pre, opts: opts, full: D, dim: dim,
		host: make([]float32, opts.BatchSize*D), norm: pre.LUT()}, nil
}

// Model is the wrapped model.
func (e *Embedder) Model() *model.Model { return e.m }

// Dim is the width of the output vectors.
func (e *Embedder) Dim() int { return e.dim }

// BatchSize is the number of images or captions per forward pass.
func (e *Embedder) BatchSize() int { return e.opts.BatchSize }

// ImageSize is the side of the square images the model takes.
func (e *Embedder) ImageSize() int { return e.m.Config().Vision.ImageSize }

// ContextLength is the longest token row the model takes
// (max_position_embeddings).
func (e *Embedder) ContextLength() int { return e.m.Config().Text.MaxPositionEmbeddings }

// VocabSize is the number of token ids the model knows.
func (e *Embedder) VocabSize() int { return e.m.Config().Text.VocabSize }

// Preprocess is the image preprocessing in use.
func (e *Embedder) Preprocess() imageproc.Config { return e.pre }

// Close releases the plans and the model's buffers.
func (e *Embedder) Close() {
	e.FreePlans()
	if e.m != nil {
		e.m.Free()
		e.m = nil
	}
}

// FreePlans releases the inference plans but not the model, for a caller
// that goes on using it (training's validation); the next batch allocates
// them again.
func (e *Embedder) FreePlans() {
	if e.vp != nil {
		e.vp.Free()
		e.vp = nil
	}
	if e.tp != nil {
		e.tp.Free()
		e.tp = nil
	}
}

// Images embeds n uint8 HWC RGB images of ImageSize x ImageSize into dst
// [n, Dim], BatchSize at a time.
func (e *Embedder) Images(dst []float32, pixels []uint8, n int) error {
	S := e.ImageSize()
	px := S * S * 3
	if len(pixels) != n*px {
		return fmt.Errorf("embed: %d pixel bytes for %d images of %dx%d", len(pixels), n, S, S)
	}
	B := e.opts.BatchSize
	for at := 0; at < n; at += B {
		k := min(B, n-at)
		if err := e.ImageBatch(dst[at*e.dim:(at+k)*e.dim], pixels[at*px:(at+k)*px], k); err != nil {
			return err
		}
	}
	return nil
}

// Texts embeds n token rows of L ids each (L <= ContextLength) into dst
// [n, Dim]: for CLIP padded after the end token, each row's largest id; a
// SigLIP pools the last position (rows padded to the context length, as
// SiglipProcessor does).
func (e *Embedder) Texts(dst []float32, ids []int32, L, n int) error {
	if len(ids) != n*L {
		return fmt.Errorf("embed: %d token ids for %d rows of %d", len(ids), n, L)
	}
	B := e.opts.BatchSize
	for at := 0; at < n; at += B {
		k := min(B, n-at)
		if err := e.TextBatch(dst[at*e.dim:(at+k)*e.dim], ids[at*L:(at+k)*L], k); err != nil {
			return err
		}
	}
	return nil
}

// ImageBatch runs one forward pass over n <= BatchSize uint8 HWC RGB images
// [n, S, S, 3] (normalised on the backend) and writes their finished
// embeddings to dst [n, Dim].
func (e *Embedder) ImageBatch(dst []float32, hwc []uint8, n int) error {
	if e.vp == nil {
		e.vp = e.m.NewVisionPlan(e.opts.BatchSize, false)
	}
	out, err := e.m.VisionForwardImages(e.vp, hwc, &e.norm, n)
	if err != nil {
		return err
	}
	e.finish(dst, out, n)
	return nil
}

// TextBatch runs one forward pass over n <= BatchSize token rows (ids holds
// n rows of equal length) and writes their finished embeddings to dst.
func (e *Embedder) TextBatch(dst []float32, ids []int32, n int) error {
	if e.tp == nil {
		e.tp = e.m.NewTextPlan(e.opts.BatchSize, false)
	}
	out, err := e.m.TextForward(e.tp, ids, n)
	if err != nil {
		return err
	}
	e.finish(dst, out, n)
	return nil
}

// finish downloads n raw projections and writes them cut and normalised.
func (e *Embedder) finish(dst []float32, out backend.Buf, n int) {
	D := e.full
	host := e.host[:n*D]
	e.be.Download(host, out)
	for i := range n {
		v := dst[i*e.dim : (i+1)*e.dim]
		copy(v, host[i*D:i*D+e.dim])
		if !e.opts.NoNormalize {
			L2Normalize(v)
		}
	}
}

// L2Normalize scales v to unit length (accumulating in float64); a zero
// vector is left as is.
func L2Normalize(v []float32) {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	if ss == 0 {
		return
	}
	inv := 1 / math.Sqrt(ss)
	for i, x := range v {
		v[i] = float32(float64(x) * inv)
	}
}
