// Command prepare turns a dataset into the first clipline stream: one row per
// image with image_id, split, image_path and captions.
//
//	prepare synthetic [--domain general|scenes] [--seed N] [--images N] --image-dir DIR [--out FILE]
//	prepare jsonl FILE [--image-root DIR] [--skip-bad] [--skip-missing] [--out FILE]
//	prepare flickr30k (--dir DIR | --download [--cache-dir DIR]) [--out FILE]
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/alecthomas/kong"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/dataset"
	"github.com/clipline/clipline/internal/dataset/flickr30k"
	"github.com/clipline/clipline/internal/dataset/jsonl"
	"github.com/clipline/clipline/internal/fetch"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/synthetic"
)

const description = `Write a dataset as a clipline stream: one row per image.

  prepare synthetic --image-dir DIR [--domain general|scenes] [--seed N] [--images N]
  prepare jsonl FILE [--image-root DIR] [--skip-bad] [--skip-missing]
  prepare flickr30k --dir DIR | --download [--cache-dir DIR]

Writes an Arrow IPC stream (stdout by default, or --out FILE, which appears
only once complete) with the columns

  image_id    utf8        stable id of the image (independent of where files live)
  split       utf8        train, val, test (or a name the source gives)
  image_path  utf8        ABSOLUTE path of the image file; decode reads it as-is
  captions    list<utf8>  every caption of the image

and a provenance entry (stage and arguments) in the schema metadata. Rows are
grouped by image: a caption listed under several images appears in each of
their rows (multi-positive). Nothing is written when the source is empty or
has an error; the message names the file and line or entry.

Sources:

  synthetic  the embedded default, no network: shapes rendered into
             --image-dir (160-320 px, PNG and JPEG), five captions each,
             deterministic from --seed. --domain general: one object (shape,
             colour, size, position, background), for pretraining. --domain
             scenes: two or three objects with spatial relations, counts and
             textures, the fine-tuning target. Objects stay in the central
             square that decode's center crop keeps.
  jsonl      one JSON object a line: {"query": TEXT, "positive": PATH or
             [PATH, ...]} ("caption"/"image" also accepted; optional "split",
             default train). Relative paths resolve against --image-root
             (default: the JSONL file's directory).
  flickr30k  a local copy (--dir: images plus dataset_flickr30k.json, or the
             Hugging Face mirror's flickr_annotations_30k.csv), or --download
             the mirror nlphuji/flickr30k (4.4 GB zip + CSV) into a cache with
             resume and progress, then convert. Karpathy splits: 29,000 train,
             1,014 val, 1,000 test images.

Downloads are cached under $CLIPLINE_CACHE (default ~/.cache/clipline).`

type commands struct {
	Out      string `default:"-" placeholder:"FILE" help:"Output stream (- is stdout); a file appears only when complete."`
	Compress string `default:"none" enum:"none,zstd,lz4" help:"Compress the output buffers (none, zstd, lz4); readers detect it."`

	Synthetic syntheticCmd `cmd:"" help:"Render the embedded synthetic dataset (no network)."`
	Jsonl     jsonlCmd     `cmd:"" name:"jsonl" help:"Convert query/positive JSONL pairs."`
	Flickr30k flickrCmd    `cmd:"" name:"flickr30k" help:"Convert (or download and convert) Flickr30k."`
}

type syntheticCmd struct {
	Domain   string  `default:"general" enum:"general,scenes" help:"general: one object per image (pretraining); scenes: 2-3 objects with relations, counts, textures (fine-tuning)."`
	Seed     uint64  `default:"1" help:"Random seed: same seed and flags, same images and stream, byte for byte."`
	Images   int     `default:"1000" help:"Number of images."`
	ImageDir string  `required:"" placeholder:"DIR" help:"Directory to write the image files into (created; existing files of the same names are overwritten)."`
	ValFrac  float64 `default:"0.1" help:"Fraction of images in the val split."`
	TestFrac float64 `default:"0.1" help:"Fraction of images in the test split."`
	MinSize  int     `default:"160" help:"Smallest image side in pixels."`
	MaxSize  int     `default:"320" help:"Largest image side in pixels."`
	JPEGFrac float64 `name:"jpeg-frac" default:"0.5" help:"Fraction of images stored as JPEG (the rest PNG)."`
	Workers  int     `default:"0" help:"Goroutines rendering images (0: all cores)."`
}

type jsonlCmd struct {
	File        string `arg:"" placeholder:"FILE" help:"JSONL file (- is stdin)."`
	ImageRoot   string `placeholder:"DIR" help:"Directory relative image paths resolve against (default: the JSONL file's directory; the current directory for stdin)."`
	Split       string `default:"train" help:"Split of lines without a \"split\" key."`
	SkipBad     bool   `help:"Skip malformed lines (counted on stderr) instead of failing."`
	SkipMissing bool   `help:"Drop images whose file does not exist (counted on stderr) instead of failing."`
}

type flickrCmd struct {
	Dir         string `placeholder:"DIR" help:"Local copy: images (in DIR, DIR/flickr30k-images or DIR/images) and dataset_flickr30k.json or flickr_annotations_30k.csv."`
	Download    bool   `help:"Download the Hugging Face mirror into --cache-dir (resumable), unpack it, and convert."`
	BaseURL     string `default:"${flickr_base}" placeholder:"URL" help:"Where --download fetches flickr_annotations_30k.csv and flickr30k-images.zip from."`
	CacheDir    string `placeholder:"DIR" help:"Download cache (default $CLIPLINE_CACHE/datasets/flickr30k, i.e. ~/.cache/clipline/datasets/flickr30k)."`
	KeepZip     bool   `help:"Keep the 4.4 GB zip after unpacking it."`
	Annotations string `placeholder:"FILE" help:"Annotation file (.json Karpathy or .csv mirror) instead of the one found in the directory."`
	ImageDir    string `placeholder:"DIR" help:"Image folder instead of the one found in the directory."`
	SkipMissing bool   `help:"Drop annotated images whose file is missing (counted on stderr) instead of failing."`
}

func main() { cli.Main("prepare", run) }

// env is what commands need from the process.
type env struct {
	cmd    *commands
	args   []string
	stdout io.Writer
	stderr io.Writer
	ctx    context.Context
	start  time.Time
}

func run(args []string, stdout, stderr io.Writer) error {
	var c commands
	kctx, err := cli.Parse("prepare", description, &c, args, stdout, stderr,
		kong.Vars{"flickr_base": flickr30k.DefaultBaseURL})
	if kctx == nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return kctx.Run(&env{cmd: &c, args: args, stdout: stdout, stderr: stderr, ctx: ctx, start: time.Now()})
}

func (s *syntheticCmd) Run(e *env) error {
	cfg := synthetic.Config{
		Seed: s.Seed, Images: s.Images, Domain: synthetic.Domain(s.Domain), ImageDir: s.ImageDir,
		ValFrac: s.ValFrac, TestFrac: s.TestFrac, MinSize: s.MinSize, MaxSize: s.MaxSize,
		JPEGFrac: s.JPEGFrac, Quality: 90, Workers: s.Workers,
	}
	if s.JPEGFrac == 0 {
		cfg.JPEGFrac = -1 // zero means "none" on the command line
	}
	if s.Images <= 0 {
		return fmt.Errorf("--images %d: need at least one image", s.Images)
	}
	rows, st, err := synthetic.Generate(cfg)
	if err != nil {
		return err
	}
	if st.DupKeysSplit > 0 {
		fmt.Fprintf(e.stderr, "prepare: warning: %d images repeat the description of another image in their split (the %s attribute space is nearly exhausted); retrieval of those is ambiguous\n", st.DupKeysSplit, s.Domain)
	}
	fmt.Fprintf(e.stderr, "prepare: rendered %d %s images (%d JPEG) into %s in %.1fs\n",
		len(rows), s.Domain, st.JPEG, s.ImageDir, time.Since(e.start).Seconds())
	return e.write(rows)
}

func (j *jsonlCmd) Run(e *env) error {
	rows, st, err := jsonl.ReadFile(j.File, jsonl.Options{
		ImageRoot: j.ImageRoot, DefaultSplit: j.Split,
		SkipBad: j.SkipBad, SkipMissing: j.SkipMissing, Log: e.stderr,
	})
	if err != nil {
		return err
	}
	if st.BadLines > 0 {
		fmt.Fprintf(e.stderr, "prepare: skipped %d malformed lines of %d\n", st.BadLines, st.Lines)
	}
	if st.MissingFiles > 0 {
		fmt.Fprintf(e.stderr, "prepare: skipped %d missing images (%d pairs)\n", st.MissingFiles, st.MissingPairs)
	}
	if st.Repeats > 0 {
		fmt.Fprintf(e.stderr, "prepare: %d repeated (query, image) pairs counted once\n", st.Repeats)
	}
	return e.write(rows)
}

func (f *flickrCmd) Run(e *env) error {
	dir := f.Dir
	switch {
	case f.Download && dir != "":
		return errors.New("give either --dir DIR (a local copy) or --download, not both")
	case f.Download:
		var err error
		dir, err = flickr30k.Download(e.ctx, flickr30k.DownloadOptions{
			BaseURL: f.BaseURL, CacheDir: f.CacheDir, KeepZip: f.KeepZip,
			Fetch: fetch.Options{Progress: e.stderr}, Log: e.stderr,
		})
		if err != nil {
			return err
		}
	case dir == "":
		return errors.New("flickr30k needs --dir DIR (a local copy) or --download")
	}
	var log io.Writer
	if f.SkipMissing {
		log = io.Discard // counted below; 31k lines would drown the summary
	}
	rows, st, err := flickr30k.Convert(dir, flickr30k.Options{
		Annotations: f.Annotations, ImageDir: f.ImageDir, SkipMissing: f.SkipMissing, Log: log,
	})
	if err != nil {
		return err
	}
	if st.Missing > 0 {
		fmt.Fprintf(e.stderr, "prepare: skipped %d annotated images without a file in %s\n", st.Missing, st.ImageDir)
	}
	counts := dataset.SplitCounts(rows)
	if !flickr30k.IsKarpathy(counts) {
		fmt.Fprintf(e.stderr, "prepare: note: splits %s differ from Karpathy's 29000/1014/1000 (a subset?)\n", dataset.FormatCounts(counts))
	}
	return e.write(rows)
}

// batchRows is how many rows go into one record batch handed to the writer
// (which re-batches to its own target size).
const batchRows = 4096

// write validates rows and writes them as a stream to --out.
func (e *env) write(rows []dataset.Row) (err error) {
	if err := dataset.Validate(rows); err != nil {
		return err
	}
	schema := arrow.NewSchema([]arrow.Field{
		stream.ImageIDField(), stream.SplitField(), stream.ImagePathField(), stream.CaptionsField(),
	}, nil)
	schema = stream.WithProvenance(schema, "prepare", e.args)
	opts := stream.Options{Compress: e.cmd.Compress}
	var w *stream.Writer
	if e.cmd.Out == "-" || e.cmd.Out == "" {
		if fetch.IsTerminal(e.stdout) {
			return errors.New("refusing to write a binary Arrow stream to a terminal; use --out FILE or a pipe")
		}
		w, err = stream.NewWriter(e.stdout, "stdout", schema, opts)
	} else {
		w, err = stream.Create(e.cmd.Out, schema, opts)
	}
	if err != nil {
		return err
	}
	defer w.Abort() // no-op after a successful Close
	for lo := 0; lo < len(rows); lo += batchRows {
		chunk := rows[lo:min(lo+batchRows, len(rows))]
		ids := make([]string, len(chunk))
		splits := make([]string, len(chunk))
		paths := make([]string, len(chunk))
		caps := make([][]string, len(chunk))
		for i, r := range chunk {
			ids[i], splits[i], paths[i], caps[i] = r.ImageID, r.Split, r.ImagePath, r.Captions
		}
		cols := []arrow.Array{stream.NewStrings(ids), stream.NewStrings(splits), stream.NewStrings(paths), stream.NewStringLists(caps)}
		rec := array.NewRecordBatch(schema, cols, int64(len(chunk)))
		for _, c := range cols {
			c.Release()
		}
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "prepare: %d images (%s), %d captions -> %s in %.1fs\n",
		len(rows), dataset.FormatCounts(dataset.SplitCounts(rows)), dataset.CaptionCount(rows),
		w.Name(), time.Since(e.start).Seconds())
	return nil
}
