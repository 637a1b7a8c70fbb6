package traindata

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clipline/clipline/internal/dataset"
	"github.com/clipline/clipline/internal/dataset/flickr30k"
	"github.com/clipline/clipline/internal/dataset/jsonl"
	"github.com/clipline/clipline/internal/decode"
	"github.com/clipline/clipline/internal/fetch"
	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/texttok"
	"github.com/clipline/clipline/internal/tokenize"
)

// cacheVersion names the prepared streams' layout and the stages' output;
// a change to what prepare, tokenize or decode write for the same inputs
// (both are pinned by golden tests) bumps it, so old entries stop matching.
const cacheVersion = "clipline prepared data 1"

// DefaultCacheDir is where prepared data is kept: data/ under
// $CLIPLINE_CACHE (default ~/.cache/clipline), beside the hub's models.
func DefaultCacheDir() string { return filepath.Join(fetch.CacheRoot(), "data") }

// PrepareOptions configure Prepare.
type PrepareOptions struct {
	Key       string    // the configuration key naming the file (data_path), for messages
	Where     string    // where that key was set
	Split     string    // split of rows that name none
	ImageRoot string    // relative image paths resolve against it ("": the file's folder for JSONL)
	ModelDir  string    // the model whose tokenizer and preprocessing the stream gets
	CacheDir  string    // "": DefaultCacheDir
	Log       io.Writer // progress lines
}

// Prepare returns a stream with caption_tokens and pixels for the model
// made from a data file: JSONL (.jsonl), Karpathy's Flickr30k JSON (.json),
// the Flickr30k mirror's CSV (.csv) or a clipline stream (anything else).
// The rows come from prepare's readers, tokens from tokenize.Run and pixels
// from decode.Run, so the stream is the one the stages would pipe to train.
// It is cached in o.CacheDir under a key of the file's bytes, each image's
// path, size and modification time, the image root, the split and the
// model's vocabulary, context length and preprocessing geometry: a second
// run with the same inputs reads it at once, and a changed input (an
// edited line, a replaced image) prepares anew. Images are keyed by size
// and time, not content: hashing Flickr30k's 4 GB of JPEGs would take
// longer than reading the prepared stream, and a replaced file changes its
// time (as make and rsync assume). A clipline stream that already has
// tokens and pixels is returned as it is.
func Prepare(path string, o PrepareOptions) (string, error) {
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir()
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("%s %s (%s): %w", o.Key, path, o.Where, err)
	}
	src, err := readSource(path, o)
	if err != nil {
		return fail(err)
	}
	if src.tokens && src.pixels {
		return path, nil
	}
	tok, err := texttok.Load(o.ModelDir)
	if err != nil {
		return fail(err)
	}
	ctx, err := tokenize.Context(o.ModelDir, tok, 0)
	if err != nil {
		return fail(err)
	}
	geom, err := decode.Geometry(o.ModelDir, 0)
	if err != nil {
		return fail(err)
	}
	key, err := src.key(path, o, ctx, geom)
	if err != nil {
		return fail(err)
	}
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	cached := filepath.Join(o.CacheDir, base+"-"+key[:20]+".arrow")
	if _, err := os.Stat(cached); err == nil {
		fmt.Fprintf(o.Log, "train: %s %s: prepared data cached at %s\n", o.Key, path, cached)
		return cached, nil
	}
	start := time.Now()
	fmt.Fprintf(o.Log, "train: preparing %s %s: %s ...\n", o.Key, path, src.summary)
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp("", "clipline-prepare-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	cur := path
	if src.rows != nil {
		cur = filepath.Join(tmp, "prepared.arrow")
		if err := dataset.Write(src.rows, dataset.WriteOptions{Out: cur, Args: []string{"train", o.Key, path}}); err != nil {
			return fail(err)
		}
	}
	// Each step writes its stream whole before the next reads it; the last
	// writes the cache entry, which (stream.Create) appears only complete.
	var steps []func(in *stream.Reader, out string) error
	if !src.tokens {
		steps = append(steps, func(in *stream.Reader, out string) error {
			return tokenize.Run(in, tok, tokenize.Options{Context: ctx, Model: o.ModelDir, Out: out, Log: o.Log})
		})
	}
	if !src.pixels {
		steps = append(steps, func(in *stream.Reader, out string) error {
			return decode.Run(in, decode.Options{Geometry: geom, Model: o.ModelDir, ImageRoot: o.ImageRoot, Out: out, Log: o.Log})
		})
	}
	for i, step := range steps {
		out := filepath.Join(tmp, fmt.Sprintf("step%d.arrow", i))
		if i == len(steps)-1 {
			out = cached
		}
		in, err := stream.Open(cur)
		if err != nil {
			return fail(err)
		}
		err = step(in, out)
		in.Close()
		if err != nil {
			return fail(err)
		}
		cur = out
	}
	fmt.Fprintf(o.Log, "train: prepared %s %s in %.1fs, cached at %s\n", o.Key, path, time.Since(start).Seconds(), cached)
	return cached, nil
}

// source is a data file read far enough to key it: its rows (nil for a
// stream), the images they name, and which columns a stream already has.
type source struct {
	kind           string
	rows           []dataset.Row
	images         []string // absolute paths, in row order
	tokens, pixels bool     // a stream's caption_tokens and pixels
	summary        string
}

func readSource(path string, o PrepareOptions) (*source, error) {
	var rows []dataset.Row
	var err error
	kind := strings.ToLower(filepath.Ext(path))
	switch kind {
	case ".jsonl":
		rows, _, err = jsonl.ReadFile(path, jsonl.Options{ImageRoot: o.ImageRoot, DefaultSplit: o.Split})
	case ".json", ".csv":
		rows, _, err = flickr30k.Convert(filepath.Dir(path), flickr30k.Options{Annotations: path, ImageDir: o.ImageRoot})
	default:
		return readStream(path, o)
	}
	if err != nil {
		return nil, err
	}
	s := &source{kind: kind, rows: rows}
	for _, r := range rows {
		s.images = append(s.images, r.ImagePath)
	}
	s.summary = fmt.Sprintf("%d images (%s), %d captions", len(rows), dataset.FormatCounts(dataset.SplitCounts(rows)), dataset.CaptionCount(rows))
	return s, nil
}

// readStream reads a clipline stream's columns and, without pixels, the
// image paths decode will read.
func readStream(path string, o PrepareOptions) (*source, error) {
	r, err := stream.Open(path)
	if err != nil {
		return nil, fmt.Errorf("not a JSONL (.jsonl), Karpathy JSON (.json), Flickr30k CSV (.csv) or clipline stream: %w", err)
	}
	defer r.Close()
	sc := r.Schema()
	s := &source{kind: "stream", tokens: stream.HasColumn(sc, stream.ColCaptionTokens), pixels: stream.HasColumn(sc, stream.ColPixels)}
	if s.tokens && s.pixels {
		return s, nil
	}
	if err := r.Require(stream.ColCaptions); err != nil {
		return nil, err
	}
	// With image_bytes decode reads the images from the file itself, whose
	// hash the key has; else from the files image_path names.
	embedded := stream.HasColumn(sc, stream.ColImageBytes)
	rows := 0
	for r.Next() {
		rows += int(r.Batch().NumRows())
		if s.pixels || embedded {
			continue
		}
		paths, err := stream.Strings(r.Batch(), stream.ColImagePath)
		if err != nil {
			return nil, r.Errorf("batch %d: %w", r.BatchIndex(), err)
		}
		for _, p := range paths {
			s.images = append(s.images, decode.Resolve(o.ImageRoot, p))
		}
	}
	s.summary = fmt.Sprintf("a clipline stream of %d rows", rows)
	return s, r.Err()
}

// key is the cache key of s made for the model: see Prepare.
func (s *source) key(path string, o PrepareOptions, ctx int, g imageproc.Geometry) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\nkind %s\nsplit %q\nimage_root %q\ncontext %d\ngeometry %+v\n", cacheVersion, s.kind, o.Split, o.ImageRoot, ctx, g)
	for _, f := range append([]string{path}, texttok.Files(o.ModelDir)...) {
		if err := hashFile(h, f); err != nil {
			return "", err
		}
	}
	for _, p := range s.images {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "image %q %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashFile adds a file's name and the hash of its bytes to h.
func hashFile(h hash.Hash, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fh := sha256.New()
	if _, err := io.Copy(fh, f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fmt.Fprintf(h, "file %s %x\n", filepath.Base(path), fh.Sum(nil))
	return nil
}
