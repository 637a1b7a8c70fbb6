// Package clip embeds texts and images with a CLIP model from Go programs,
// the way Python users use a predictor object: load a checkpoint once, then
// encode texts and images into L2-normalised vectors whose dot products are
// cosine similarities.
//
//	m, err := clip.Load("openai/clip-vit-base-patch32") // or a checkpoint directory
//	if err != nil { ... }
//	defer m.Close()
//	txt, err := m.EncodeText([]string{"a dog on a beach"})
//	img, err := m.EncodeImageFiles([]string{"dog.jpg"})
//	score := clip.Dot(txt[0], img[0])
//
// It is the same code as the embed stage: texts are tokenized as the
// tokenize stage does, with the model's spiece.model (SigLIP, padded to
// its max_position_embeddings) or vocab.json and merges.txt (CLIP: context
// max_position_embeddings, 77 for CLIP; longer texts are truncated with the
// end token kept, as clip.tokenize(truncate=True)), images are preprocessed as
// the decode stage does (Hugging Face's CLIPImageProcessor on Pillow:
// RGB, bicubic resize of the shortest side, center crop; or a SigLIP
// model's SiglipImageProcessor: resize to exactly N x N) and normalised
// with the model's preprocessor_config.json, and the embeddings equal the
// embed stage's for the same inputs.
//
// A checkpoint is a Hugging Face CLIPModel directory (config.json,
// model.safetensors, preprocessor_config.json, vocab.json, merges.txt) or a
// hub id, downloaded once into the cache ($CLIPLINE_CACHE, default
// ~/.cache/clipline). Without a tokenizer (spiece.model, or vocab.json and
// merges.txt) a model can still encode images; EncodeText then fails.
package clip

import (
	"errors"
	"fmt"
	"image"
	"io"
	"runtime"
	"sync"

	"github.com/clipline/clipline/internal/backend"
	"github.com/clipline/clipline/internal/bpe"
	"github.com/clipline/clipline/internal/device"
	"github.com/clipline/clipline/internal/embed"
	"github.com/clipline/clipline/internal/fetch"
	"github.com/clipline/clipline/internal/hub"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/spm"
	"github.com/clipline/clipline/internal/texttok"
)

// Option configures Load.
type Option func(*options)

type options struct {
	device   string
	batch    int
	dim      int
	progress io.Writer
	cacheDir string
	revision string
}

// WithDevice selects the compute device: "cpu" (the default, all cores, fp32),
// "cpu,bf16" (bf16 products with fp32 accumulation, docs/embed.md), "cuda"
// or "cuda:N" (binaries built with the cuda tag), optionally followed by
// ",bf16".
func WithDevice(name string) Option { return func(o *options) { o.device = name } }

// WithBatchSize sets how many texts or images go through the model at once
// (default 64). Larger batches use more memory and may run faster.
func WithBatchSize(n int) Option { return func(o *options) { o.batch = n } }

// WithDim keeps the first n dimensions of each embedding, renormalised
// (for Matryoshka-trained models). 0 keeps all of them.
func WithDim(n int) Option { return func(o *options) { o.dim = n } }

// WithDownloadProgress shows the progress of a hub download on w
// (e.g. os.Stderr). Downloads are silent by default.
func WithDownloadProgress(w io.Writer) Option { return func(o *options) { o.progress = w } }

// WithCacheDir sets the root of the download cache (default $CLIPLINE_CACHE,
// else ~/.cache/clipline).
func WithCacheDir(dir string) Option { return func(o *options) { o.cacheDir = dir } }

// WithRevision selects a hub branch, tag or commit (default "main").
func WithRevision(rev string) Option { return func(o *options) { o.revision = rev } }

// Model is a loaded CLIP model. Its methods are safe for concurrent use;
// calls run one at a time (each one already uses every core).
type Model struct {
	mu   sync.Mutex
	dir  string
	be   backend.Backend
	e    *embed.Embedder
	tok  texttok.Tokenizer // nil without spiece.model or vocab.json
	pool *imageproc.Pool
	proc []*imageproc.Processor // one per worker, for EncodeImage
	dim  int                    // kept so Dim and ImageSize work after Close
	side int
	ctx  int // token ids per text
}

// Load reads a checkpoint directory, or downloads a hub id such as
// "openai/clip-vit-base-patch32" into the cache first.
func Load(dirOrID string, opts ...Option) (*Model, error) {
	o := options{device: "cpu", batch: embed.DefaultBatchSize}
	for _, f := range opts {
		f(&o)
	}
	if o.batch < 1 {
		return nil, fmt.Errorf("clip: batch size %d must be positive", o.batch)
	}
	dir, err := hub.Resolve(dirOrID, hub.Options{CacheDir: o.cacheDir, Revision: o.revision,
		Fetch: fetch.Options{Progress: o.progress}})
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	be, err := device.Open(o.device)
	if err != nil {
		return nil, fmt.Errorf("clip: device %s: %w", o.device, err)
	}
	m := &Model{dir: dir, be: be}
	if err := m.init(o); err != nil {
		m.Close()
		return nil, fmt.Errorf("clip: %w", err)
	}
	return m, nil
}

func (m *Model) init(o options) error {
	var err error
	if m.e, err = embed.Load(m.dir, m.be, embed.Options{BatchSize: o.batch, Dim: o.dim}); err != nil {
		return err
	}
	if texttok.Has(m.dir) {
		if m.tok, err = texttok.Load(m.dir); err != nil {
			return err
		}
		if V := m.e.VocabSize(); m.tok.VocabSize() > V {
			return fmt.Errorf("%s: %s has %d tokens but the model's vocab_size is %d", m.dir, m.tok.File(), m.tok.VocabSize(), V)
		}
	}
	m.dim, m.side, m.ctx = m.e.Dim(), m.e.ImageSize(), m.e.ContextLength()
	g := m.e.Preprocess().Geometry
	if m.pool, err = imageproc.NewPool(g, 0); err != nil {
		return err
	}
	for range runtime.GOMAXPROCS(0) {
		p, err := imageproc.NewProcessor(g)
		if err != nil {
			return err
		}
		m.proc = append(m.proc, p)
	}
	return nil
}

// Dim is the length of the embeddings.
func (m *Model) Dim() int { return m.dim }

// ImageSize is the side of the square images the model sees.
func (m *Model) ImageSize() int { return m.side }

// Dir is the checkpoint directory (the cache folder for a hub id).
func (m *Model) Dir() string { return m.dir }

// Close releases the model and its device. The Model is unusable afterwards.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e != nil {
		m.e.Close()
		m.e = nil
	}
	if m.be == nil {
		return nil
	}
	err := device.Close(m.be)
	m.be = nil
	return err
}

var errClosed = errors.New("clip: model is closed")

// EncodeText returns one normalised embedding per text.
func (m *Model) EncodeText(texts []string) ([][]float32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e == nil {
		return nil, errClosed
	}
	if err := m.needTokenizer("EncodeText"); err != nil {
		return nil, err
	}
	C := m.ctx
	out, flat := rows(len(texts), m.Dim())
	B := m.e.BatchSize()
	ids := make([]int32, min(B, len(texts))*C)
	for at := 0; at < len(texts); at += B {
		n := min(B, len(texts)-at)
		m.tok.TokenizeAll(ids[:n*C], texts[at:at+n], C, 0)
		if err := m.e.Texts(flat[at*m.Dim():(at+n)*m.Dim()], ids[:n*C], C, n); err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
	}
	return out, nil
}

// ContextLength is the number of token ids per text (77 for CLIP).
func (m *Model) ContextLength() int { return m.ctx }

// Tokenize returns the texts' token ids as EncodeText tokenizes them,
// ContextLength per text, for EncodeTokens. It does not wait for other
// calls (a server tokenizes while the model encodes), and
// EncodeTokens(Tokenize(texts)) equals EncodeText(texts).
func (m *Model) Tokenize(texts []string) ([]int32, error) {
	if err := m.needTokenizer("Tokenize"); err != nil {
		return nil, err
	}
	ids := make([]int32, len(texts)*m.ctx)
	m.tok.TokenizeAll(ids, texts, m.ctx, 0)
	return ids, nil
}

// EncodeTokens returns one normalised embedding per row of ContextLength
// token ids (Tokenize's output).
func (m *Model) EncodeTokens(ids []int32) ([][]float32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e == nil {
		return nil, errClosed
	}
	C := m.ctx
	if len(ids)%C != 0 {
		return nil, fmt.Errorf("clip: %d token ids are not rows of %d", len(ids), C)
	}
	n := len(ids) / C
	out, flat := rows(n, m.Dim())
	if err := m.e.Texts(flat, ids, C, n); err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	return out, nil
}

func (m *Model) needTokenizer(what string) error {
	if m.tok == nil {
		return fmt.Errorf("clip: %s has no %s, nor %s and %s; %s needs the model's tokenizer files", m.dir, spm.File, bpe.VocabFile, bpe.MergesFile, what)
	}
	return nil
}

// EncodeImage returns one normalised embedding per image, preprocessed as the
// decode stage preprocesses image files.
func (m *Model) EncodeImage(images []image.Image) ([][]float32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e == nil {
		return nil, errClosed
	}
	for i, img := range images {
		if img == nil || img.Bounds().Empty() {
			return nil, fmt.Errorf("clip: image %d is empty", i)
		}
	}
	return m.encodeImages(len(images), func(dst []uint8, from, n int) error {
		px := len(dst) / n
		var wg sync.WaitGroup
		for w, p := range m.proc[:min(len(m.proc), n)] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += len(m.proc) {
					p.Apply(dst[i*px:(i+1)*px], imageproc.FromImage(images[from+i], ""))
				}
			}()
		}
		wg.Wait()
		return nil
	})
}

// EncodeImageBytes decodes encoded images (the contents of image files:
// JPEG, PNG, GIF, WebP, BMP) and returns one normalised embedding per image,
// equal to EncodeImageFiles' for the same files. An undecodable image is an
// error naming its index.
func (m *Model) EncodeImageBytes(data [][]byte) ([][]float32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e == nil {
		return nil, errClosed
	}
	return m.encodeImages(len(data), func(dst []uint8, from, n int) error {
		px := len(dst) / n
		errs := make([]error, n)
		var wg sync.WaitGroup
		for w, p := range m.proc[:min(len(m.proc), n)] {
			wg.Go(func() {
				for i := w; i < n; i += len(m.proc) {
					_, errs[i] = p.Bytes(dst[i*px:(i+1)*px], data[from+i], fmt.Sprintf("image %d", from+i))
				}
			})
		}
		wg.Wait()
		return errors.Join(errs...)
	})
}

// EncodeImageFiles decodes image files (JPEG, PNG, GIF, WebP, BMP) and
// returns one normalised embedding per file. An unreadable file is an error
// naming it.
func (m *Model) EncodeImageFiles(paths []string) ([][]float32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.e == nil {
		return nil, errClosed
	}
	return m.encodeImages(len(paths), func(dst []uint8, from, n int) error {
		for _, err := range m.pool.Files(dst, paths[from:from+n]) {
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// encodeImages preprocesses and embeds n images a batch at a time; fill
// writes images [from, from+n) as uint8 HWC into dst.
func (m *Model) encodeImages(n int, fill func(dst []uint8, from, n int) error) ([][]float32, error) {
	S := m.e.ImageSize()
	px := S * S * 3
	B := m.e.BatchSize()
	out, flat := rows(n, m.Dim())
	pix := make([]uint8, min(B, n)*px)
	for at := 0; at < n; at += B {
		k := min(B, n-at)
		if err := fill(pix[:k*px], at, k); err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
		if err := m.e.Images(flat[at*m.Dim():(at+k)*m.Dim()], pix[:k*px], k); err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
	}
	return out, nil
}

// rows allocates n vectors of d values in one block.
func rows(n, d int) ([][]float32, []float32) {
	flat := make([]float32, n*d)
	out := make([][]float32, n)
	for i := range out {
		out[i] = flat[i*d : (i+1)*d : (i+1)*d]
	}
	return out, flat
}

// Dot is the dot product of two embeddings: their cosine similarity when
// both are normalised (Load's default).
func Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		panic(fmt.Sprintf("clip.Dot: lengths %d and %d differ", len(a), len(b)))
	}
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
