// Command prepare turns a dataset into the first clipline stream: one row per
// image with image_id, split, image_path and captions.
//
//	prepare synthetic [--domain general|scenes] [--seed N] [--images N] --render-dir DIR [--out FILE | --jsonl DIR]
//	prepare jsonl FILE [--image-root DIR] [--val-frac F --test-frac F [--seed N]] [--skip-bad] [--skip-missing] [--out FILE]
//	prepare flickr30k (--dir DIR | --download [--cache-dir DIR]) [--out FILE]
//	prepare webdataset SHARD.tar|DIR... [--split NAME | --val-frac F --test-frac F [--seed N]] [--skip-bad] [--out FILE]
//	prepare parquet FILE|DIR... [--image-column C] [--caption-column C] [--id-column C] [--split NAME | --val-frac F ...] [--skip-bad] [--out FILE]
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/alecthomas/kong"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/dataset"
	"github.com/clipline/clipline/internal/dataset/flickr30k"
	"github.com/clipline/clipline/internal/dataset/jsonl"
	"github.com/clipline/clipline/internal/fetch"
	"github.com/clipline/clipline/internal/shard"
	"github.com/clipline/clipline/internal/synthetic"
)

type commands struct {
	Out         string `default:"-" placeholder:"FILE" help:"Output (- is stdout, a stream); FILE.arrow is written as an Arrow IPC file (random access), other names as a stream; a file appears only when complete."`
	Compress    string `default:"none" enum:"none,zstd,lz4" placeholder:"NAME" help:"Compress the output buffers: none, zstd or lz4; readers detect it."`
	EmbedImages bool   `help:"Copy each image file's bytes into an image_bytes column (image_path kept), so the stream is self-contained."`
	shard.Flags `embed:""`

	Synthetic  syntheticCmd  `cmd:"" help:"Render the embedded synthetic dataset (no network)."`
	Jsonl      jsonlCmd      `cmd:"" name:"jsonl" help:"Convert query/positive JSONL pairs."`
	Flickr30k  flickrCmd     `cmd:"" name:"flickr30k" help:"Convert (or download and convert) Flickr30k."`
	Webdataset webdatasetCmd `cmd:"" name:"webdataset" help:"Convert webdataset tar shards (img2dataset's output); images go into the stream."`
	Parquet    parquetCmd    `cmd:"" name:"parquet" help:"Convert parquet files (Hugging Face datasets, img2dataset); images go into the stream."`
}

type syntheticCmd struct {
	Domain    string  `default:"general" enum:"general,scenes" placeholder:"NAME" help:"general: one object per image (pretraining); scenes: 2-3 objects with relations, counts, textures (fine-tuning)."`
	Seed      uint64  `default:"1" placeholder:"N" help:"Random seed: same seed and flags, same images and stream, byte for byte."`
	Images    int     `default:"1000" placeholder:"N" help:"Number of images."`
	RenderDir string  `required:"" aliases:"image-dir" placeholder:"DIR" help:"Directory to render the image files into (created; existing files of the same names are overwritten)."`
	ValFrac   float64 `default:"0.1" placeholder:"F" help:"Fraction of images in the val split."`
	TestFrac  float64 `default:"0.1" placeholder:"F" help:"Fraction of images in the test split."`
	MinSize   int     `default:"160" placeholder:"N" help:"Smallest image side in pixels."`
	MaxSize   int     `default:"320" placeholder:"N" help:"Largest image side in pixels."`
	JPEGFrac  float64 `name:"jpeg-frac" default:"0.5" placeholder:"F" help:"Fraction of images stored as JPEG (the rest PNG)."`
	Workers   int     `default:"0" placeholder:"N" help:"Goroutines rendering images; 0 for all cores."`
	JSONL     string  `name:"jsonl" placeholder:"DIR" help:"Write vembed-factory JSONL instead of the stream: DIR/train.jsonl, val.jsonl, test.jsonl, {\"query\", \"positive\"} lines with paths relative to DIR."`
}

type jsonlCmd struct {
	File        string  `arg:"" placeholder:"FILE" stdin:"JSONL lines; pass a FILE instead of - or pipe them: cat pairs.jsonl | prepare jsonl -" help:"JSONL file (- is stdin)."`
	ImageRoot   string  `placeholder:"DIR" help:"Directory relative image paths resolve against (default: the JSONL file's directory; the current directory for stdin)."`
	Split       string  `default:"train" placeholder:"NAME" help:"Split of lines without a \"split\" key (the train share with --val-frac/--test-frac)."`
	ValFrac     float64 `default:"0" placeholder:"F" help:"Fraction of the images without a \"split\" key to put in val (by image, seeded)."`
	TestFrac    float64 `default:"0" placeholder:"F" help:"Fraction of the images without a \"split\" key to put in test (by image, seeded)."`
	Seed        uint64  `default:"1" placeholder:"N" help:"Seed of the --val-frac/--test-frac draw."`
	SkipBad     bool    `help:"Skip malformed lines (counted on stderr) instead of failing."`
	SkipMissing bool    `help:"Drop images whose file does not exist (counted on stderr) instead of failing."`
}

type flickrCmd struct {
	Dir         string `placeholder:"DIR" help:"Local copy: images (in DIR, DIR/flickr30k-images or DIR/images) and dataset_flickr30k.json or flickr_annotations_30k.csv."`
	Download    bool   `help:"Download the Hugging Face mirror into --cache-dir (resumable), unpack it, and convert."`
	BaseURL     string `default:"${flickr_base}" placeholder:"URL" help:"Where --download fetches flickr_annotations_30k.csv and flickr30k-images.zip from."`
	CacheDir    string `placeholder:"DIR" help:"Download cache (default $CLIPLINE_CACHE/datasets/flickr30k, i.e. ~/.cache/clipline/datasets/flickr30k)."`
	KeepZip     bool   `help:"Keep the 4.4 GB zip after unpacking it."`
	Annotations string `placeholder:"FILE" help:"Annotation file (.json Karpathy or .csv mirror) instead of the one found in the directory."`
	ImageRoot   string `placeholder:"DIR" help:"Folder the annotations' image file names are resolved against, instead of the one found in --dir."`
	SkipMissing bool   `help:"Drop annotated images whose file is missing (counted on stderr) instead of failing."`
}

func main() { cli.Main("prepare", run) }

// env is what commands need from the process.
type env struct {
	cmd            *commands
	args           []string
	stdout, stderr io.Writer
	ctx            context.Context
	start          time.Time
	part           shard.Spec // --shard's part; zero when not sharded
}

func run(args []string, stdout, stderr io.Writer) error {
	var c commands
	kctx, err := cli.Parse("prepare", description, &c, args, stdout, stderr,
		kong.Vars{"flickr_base": flickr30k.DefaultBaseURL})
	if kctx == nil {
		return err
	}
	part, err := c.Spec()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return kctx.Run(&env{cmd: &c, args: args, stdout: stdout, stderr: stderr, ctx: ctx, start: time.Now(), part: part})
}

func (s *syntheticCmd) Run(e *env) error {
	if s.Images <= 0 {
		return fmt.Errorf("--images %d: need at least one image", s.Images)
	}
	cfg := synthetic.Config{
		Seed: s.Seed, Images: s.Images, Domain: synthetic.Domain(s.Domain), ImageDir: s.RenderDir,
		ValFrac: s.ValFrac, TestFrac: s.TestFrac, MinSize: s.MinSize, MaxSize: s.MaxSize,
		JPEGFrac: s.JPEGFrac, Quality: 90, Workers: s.Workers, RenderPart: e.part,
	}
	if s.JPEGFrac == 0 {
		cfg.JPEGFrac = -1 // zero means "none" on the command line
	}
	rows, st, err := synthetic.Generate(cfg)
	if err != nil {
		return err
	}
	st.Report(e.stderr, cfg, time.Since(e.start))
	if s.JSONL == "" {
		return e.write(rows)
	} else if e.part.Sharded() {
		return fmt.Errorf("--jsonl %s writes JSONL files, not parts: drop --shard %s", s.JSONL, e.cmd.Shard)
	} else if e.cmd.EmbedImages {
		return fmt.Errorf("--jsonl %s writes JSONL files that name the images: drop --embed-images", s.JSONL)
	} else if e.cmd.Out != "-" {
		return fmt.Errorf("--jsonl %s writes JSONL files instead of the stream; drop --out %s", s.JSONL, e.cmd.Out)
	}
	_, err = jsonl.WriteSplits(s.JSONL, rows, e.stderr)
	return err
}

func (j *jsonlCmd) Run(e *env) error {
	rows, st, err := jsonl.ReadFile(j.File, jsonl.Options{ImageRoot: j.ImageRoot, DefaultSplit: j.Split,
		Draw:    dataset.Fractions{Val: j.ValFrac, Test: j.TestFrac, Seed: j.Seed},
		SkipBad: j.SkipBad, SkipMissing: j.SkipMissing, Log: e.stderr})
	if err != nil {
		return err
	}
	st.Report(e.stderr)
	return e.write(rows)
}

func (f *flickrCmd) Run(e *env) error {
	dir, err := flickr30k.Source(e.ctx, f.Dir, f.Download, flickr30k.DownloadOptions{BaseURL: f.BaseURL,
		CacheDir: f.CacheDir, KeepZip: f.KeepZip, Fetch: fetch.Options{Progress: e.stderr}, Log: e.stderr})
	if err != nil {
		return err
	}
	// No Log: skipped images are counted in the report (31k lines would drown it).
	rows, st, err := flickr30k.Convert(dir, flickr30k.Options{
		Annotations: f.Annotations, ImageDir: f.ImageRoot, SkipMissing: f.SkipMissing})
	if err != nil {
		return err
	}
	st.Report(e.stderr)
	return e.write(rows)
}

// write writes rows (--shard's part of them) as the stream to --out.
func (e *env) write(rows []dataset.Row) error {
	o, err := e.writeOptions()
	if err != nil {
		return err
	}
	return dataset.Write(rows, o)
}

// writeOptions is where and how the stream (or --shard's part) goes.
func (e *env) writeOptions() (dataset.WriteOptions, error) {
	out, err := e.part.Output(e.cmd.Out)
	if err != nil {
		return dataset.WriteOptions{}, err
	}
	return dataset.WriteOptions{Out: out, Stdout: e.stdout, Part: e.part,
		Compress: e.cmd.Compress, EmbedImages: e.cmd.EmbedImages, Args: e.args, Log: e.stderr, Start: e.start}, nil
}
