// Package synthetic is clipline's embedded default dataset: scenes of simple
// shapes rendered to image files, with five captions each, deterministic
// from a seed (same seed and configuration, same bytes).
//
// Two domains share shapes and colours: General (one object; shape, colour,
// size, position, background) to pretrain a small base model, and Scenes
// (two or three objects with spatial relations, counts and textures) as the
// fine-tuning target. Images are 160-320 px, mixed PNG and JPEG and mixed
// aspect ratios, so decode's resize and crop get exercised; objects stay in
// the central square that decode's center crop keeps, and are large and
// saturated enough for a small CLIP at 64x64.
//
// Retrieval must be well defined, so each image's attribute set (its Key:
// everything its captions can say) is unique across the dataset whenever
// the attribute space allows; Stats reports any repeats.
package synthetic

import (
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/clipline/clipline/internal/atomicfile"
	"github.com/clipline/clipline/internal/dataset"
	"github.com/clipline/clipline/internal/shard"
)

// Config describes a dataset. Zero fields take the defaults of Defaults.
type Config struct {
	Seed     uint64
	Images   int
	Domain   Domain
	ImageDir string  // where image files are written (created if needed)
	ValFrac  float64 // fraction of images in val
	TestFrac float64 // fraction of images in test
	MinSize  int     // smallest image side in pixels
	MaxSize  int     // largest image side in pixels
	JPEGFrac float64 // fraction of images stored as JPEG (the rest PNG); <0 for none
	Quality  int     // JPEG quality
	Workers  int     // rendering goroutines; default GOMAXPROCS
	// RenderPart, when sharded, renders only that part's range of the
	// images (Generate still returns every row: the plan and its split draw
	// are over the whole dataset, and the writer keeps the part's rows).
	RenderPart shard.Spec
}

// Defaults returns the default configuration (ImageDir still to be set).
func Defaults() Config {
	return Config{Seed: 1, Images: 1000, Domain: General, ValFrac: 0.1, TestFrac: 0.1,
		MinSize: 160, MaxSize: 320, JPEGFrac: 0.5, Quality: 90}
}

func (c Config) withDefaults() Config {
	d := Defaults()
	if c.Images == 0 {
		c.Images = d.Images
	}
	if c.Domain == "" {
		c.Domain = d.Domain
	}
	if c.MinSize == 0 {
		c.MinSize = d.MinSize
	}
	if c.MaxSize == 0 {
		c.MaxSize = d.MaxSize
	}
	if c.JPEGFrac == 0 {
		c.JPEGFrac = d.JPEGFrac
	} else if c.JPEGFrac < 0 {
		c.JPEGFrac = 0
	}
	if c.Quality == 0 {
		c.Quality = d.Quality
	}
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	return c
}

// Validate reports the first problem with c (after defaults).
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Domain != General && c.Domain != Scenes:
		return fmt.Errorf("unknown domain %q (want %q or %q)", c.Domain, General, Scenes)
	case c.Images < 0:
		return fmt.Errorf("images must be positive, got %d", c.Images)
	case c.fractions().Check() != nil:
		return c.fractions().Check()
	case c.MinSize < 32 || c.MaxSize < c.MinSize || c.MaxSize > 4096:
		return fmt.Errorf("image sizes must satisfy 32 <= min (%d) <= max (%d) <= 4096", c.MinSize, c.MaxSize)
	case c.JPEGFrac > 1:
		return fmt.Errorf("JPEG fraction %g above 1", c.JPEGFrac)
	case c.Quality < 1 || c.Quality > 100:
		return fmt.Errorf("JPEG quality %d outside 1..100", c.Quality)
	}
	return nil
}

// Stats summarises a plan.
type Stats struct {
	Images       int
	Rendered     int // images Generate rendered (all, or RenderPart's) ...
	RenderedJPEG int // ... and the JPEG ones among them
	Splits       map[string]int
	Kinds        map[Kind]int
	JPEG         int
	DupKeys      int // images whose key another image already has
	DupKeysSplit int // ... within the same split (these make retrieval ambiguous)
	// DupCaptions counts captions that appear verbatim under another image
	// of the same split.
	DupCaptions int
}

// Report writes prepare's summary of a dataset generated with c in elapsed
// to w, warning when descriptions repeat within a split.
func (s Stats) Report(w io.Writer, c Config, elapsed time.Duration) {
	if s.DupKeysSplit > 0 {
		fmt.Fprintf(w, "prepare: warning: %d images repeat the description of another image in their split (the %s attribute space is nearly exhausted); retrieval of those is ambiguous\n", s.DupKeysSplit, c.Domain)
	}
	fmt.Fprintf(w, "prepare: rendered %d %s images (%d JPEG) into %s in %.1fs\n",
		s.Rendered, c.Domain, s.RenderedJPEG, c.ImageDir, elapsed.Seconds())
}

// streamScene is the stream of the per-image random generators: independent
// of each other and of the split draw (dataset.Fractions.Draw), so rendering
// order or worker count never matters.
const streamScene = 0x5ce7e

// fractions is c's split draw, the one prepare jsonl makes too.
func (c Config) fractions() dataset.Fractions {
	return dataset.Fractions{Val: c.ValFrac, Test: c.TestFrac, Seed: c.Seed}
}

// Plan decides every image (split, content, captions, size, format) without
// rendering. Deterministic in c.
func Plan(c Config) ([]Scene, Stats, error) {
	if err := c.Validate(); err != nil {
		return nil, Stats{}, err
	}
	c = c.withDefaults()
	n := c.Images
	split := c.fractions().Draw(n)

	scenes := make([]Scene, n)
	st := Stats{Images: n, Splits: map[string]int{}, Kinds: map[Kind]int{}}
	global := map[string]bool{}
	perSplit := map[string]map[string]bool{}
	for i := range scenes {
		s := &scenes[i]
		s.Index, s.Split = i, split[i]
		s.ID = fmt.Sprintf("%s-%05d", c.Domain, i)
		r := rand.New(rand.NewPCG(c.Seed, streamScene<<32|uint64(i)))
		s.Width = c.MinSize + r.IntN(c.MaxSize-c.MinSize+1)
		s.Height = c.MinSize + r.IntN(c.MaxSize-c.MinSize+1)
		s.JPEG = r.Float64() < c.JPEGFrac
		s.GradX, s.GradY = jitter(r, 0.12), jitter(r, 0.12)
		if perSplit[s.Split] == nil {
			perSplit[s.Split] = map[string]bool{}
		}
		// Resample until the key is new; if the space is nearly exhausted,
		// settle for a key new within the split, then for a repeat.
		var fallback *Scene
		for try := 0; ; try++ {
			var cand Scene = *s
			if c.Domain == General {
				sampleGeneral(r, &cand)
			} else {
				sampleScenes(r, &cand)
			}
			if !global[cand.Key] {
				*s = cand
				break
			}
			if fallback == nil && !perSplit[s.Split][cand.Key] {
				f := cand
				fallback = &f
			}
			if try == 200 {
				if fallback != nil {
					*s = *fallback
				} else {
					*s = cand
					st.DupKeysSplit++
				}
				st.DupKeys++
				break
			}
		}
		global[s.Key] = true
		perSplit[s.Split][s.Key] = true
		captionScene(r, s)
		st.Splits[s.Split]++
		st.Kinds[s.Kind]++
		if s.JPEG {
			st.JPEG++
		}
	}
	// Verbatim caption repeats across images of one split.
	owner := map[string]int{}
	for i := range scenes {
		for _, cpt := range scenes[i].Captions {
			k := scenes[i].Split + "\x00" + cpt
			if j, ok := owner[k]; ok && j != i {
				st.DupCaptions++
			} else {
				owner[k] = i
			}
		}
	}
	return scenes, st, nil
}

// Generate plans the dataset, renders every image (or c.RenderPart's) into
// c.ImageDir (in parallel) and returns one row per image with absolute
// image paths.
func Generate(c Config) ([]dataset.Row, Stats, error) {
	if c.ImageDir == "" {
		return nil, Stats{}, errors.New("synthetic: no image directory given")
	}
	scenes, st, err := Plan(c)
	if err != nil {
		return nil, st, err
	}
	if len(scenes) == 0 {
		return nil, st, errors.New("synthetic: zero images requested")
	}
	c = c.withDefaults()
	dir, err := filepath.Abs(c.ImageDir)
	if err != nil {
		return nil, st, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, st, fmt.Errorf("synthetic: image directory: %w", err)
	}
	lo, hi := c.RenderPart.Range(len(scenes))
	if err := renderAll(scenes[lo:hi], dir, c); err != nil {
		return nil, st, err
	}
	st.Rendered = hi - lo
	for i := lo; i < hi; i++ {
		if scenes[i].JPEG {
			st.RenderedJPEG++
		}
	}
	rows := make([]dataset.Row, len(scenes))
	for i := range scenes {
		s := &scenes[i]
		rows[i] = dataset.Row{ImageID: s.ID, Split: s.Split, ImagePath: filepath.Join(dir, s.FileName()), Captions: s.Captions}
	}
	return rows, st, nil
}

func renderAll(scenes []Scene, dir string, c Config) error {
	jobs := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	stop := make(chan struct{})
	for range c.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			enc := png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &pngPool{}}
			for i := range jobs {
				if err := writeImage(&scenes[i], dir, c.Quality, &buf, &enc); err != nil {
					once.Do(func() { firstErr = err; close(stop) })
				}
			}
		}()
	}
feed:
	for i := range scenes {
		select {
		case jobs <- i:
		case <-stop:
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	return firstErr
}

type pngPool struct{ b *png.EncoderBuffer }

func (p *pngPool) Get() *png.EncoderBuffer  { return p.b }
func (p *pngPool) Put(b *png.EncoderBuffer) { p.b = b }

// writeImage renders s and writes it via a temporary file, so an interrupted
// run never leaves a truncated image under the final name.
func writeImage(s *Scene, dir string, quality int, buf *bytes.Buffer, enc *png.Encoder) error {
	img := Render(s)
	buf.Reset()
	var err error
	if s.JPEG {
		err = jpeg.Encode(buf, img, &jpeg.Options{Quality: quality})
	} else {
		err = enc.Encode(buf, img)
	}
	if err != nil {
		return fmt.Errorf("synthetic: encode %s: %w", s.ID, err)
	}
	path := filepath.Join(dir, s.FileName())
	if err := atomicfile.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("synthetic: write %s: %w", path, err)
	}
	return nil
}
