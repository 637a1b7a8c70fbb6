// Command decode adds the pixels column to a clipline stream: each row's
// image (image_bytes or image_path) decoded, converted to RGB, resized and center-cropped exactly as
// Hugging Face's CLIPImageProcessor does with Pillow.
//
//	decode (--model DIR|ID | --size N) [--image-root DIR] [--skip-bad] [--in FILE] [--out FILE]
package main

import (
	"io"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/decode"
	"github.com/clipline/clipline/internal/hub"
	"github.com/clipline/clipline/internal/shard"
	"github.com/clipline/clipline/internal/stream"
)

const description = `Decode images into a pixels column.

Reads an Arrow IPC stream (stdin by default) whose rows have an image_bytes
column (the encoded files, as prepare --embed-images writes) or an image_path
column, and writes it (stdout by default) with pixels added:
fixed_size_list<uint8>[N*N*3], the image as HWC RGB. When a stream has both,
image_bytes is decoded and image_path is not read. Each image (JPEG, PNG,
GIF, WebP or BMP) is converted to RGB as Pillow's convert("RGB") does, resized
with Pillow's bicubic filter so its shorter side is N (the longer side
floored; antialiased when shrinking), and center-cropped to N x N with
top=(h-N)/2 and left=(w-N)/2 rounded down (CLIPImageProcessor).

The geometry comes from --model DIR or a Hugging Face id (downloaded into
the cache as train and embed do; its preprocessor_config.json: size,
crop_size, resample; without that file, config.json's
vision_config.image_size with CLIP's defaults; a crop other than that image
size is refused, as train and embed refuse it) or from --size N. A SigLIP
model's file (image_processor_type SiglipImageProcessor, size {"height": N,
"width": N}) resizes to exactly N x N, the aspect ratio not kept, with its
resample filter (2 bilinear, 3 bicubic; Pillow-exact either way) and no
crop. Absolute image paths are read as they
are; relative ones are resolved against --image-root when given, otherwise
against the current directory (prepare writes absolute paths).

Images are decoded on all cores; row order is kept. An image that cannot be
read or decoded stops the stage with an error naming the row, image_id and
file (or image_bytes), and no output is completed; with --skip-bad such rows are dropped and
counted on stderr instead. Other columns pass through unchanged; the schema
metadata gains clipline.image_size (and clipline.model) and a provenance
entry.`

type command struct {
	Model     string `xor:"geometry" placeholder:"DIR|ID" help:"Model directory or Hugging Face id whose preprocessor_config.json gives the size."`
	Size      int    `xor:"geometry" placeholder:"N" help:"Output side in pixels (resize shortest side to N, crop N x N)."`
	ImageRoot string `placeholder:"DIR" help:"Directory that relative image paths are resolved against (default: the current directory)."`
	SkipBad   bool   `help:"Drop rows whose image cannot be read or decoded (counted on stderr) instead of failing."`
	In        string `default:"-" placeholder:"FILE" stdin:"an Arrow stream of rows with image_bytes or image_path; pass --in FILE or pipe one: prepare ... | decode --model DIR" help:"Input: an Arrow stream, IPC file or directory of parts (- is stdin)."`
	Out       string `default:"-" placeholder:"FILE" help:"Output (- is stdout, a stream); FILE.arrow is written as an Arrow IPC file (random access), other names as a stream; a file appears only when complete."`
	Compress  string `default:"none" enum:"none,zstd,lz4" placeholder:"NAME" help:"Compress the output buffers: none, zstd or lz4; readers detect it."`
	Workers   int    `default:"0" placeholder:"N" help:"Goroutines decoding images; 0 for all cores."`

	shard.Flags `embed:""`
}

func main() { cli.Main("decode", run) }

// run parses args and runs the stage; logs go to stderr.
func run(args []string, stdout, stderr io.Writer) error {
	var c command
	if ctx, err := cli.Parse("decode", description, &c, args, stdout, stderr); ctx == nil {
		return err
	}
	return c.run(args, stdout, stderr)
}

func (c *command) run(args []string, stdout, stderr io.Writer) error {
	dir := ""
	if c.Model != "" {
		var err error
		if dir, err = hub.Model(c.Model, stderr); err != nil {
			return err
		}
	}
	g, err := decode.Geometry(dir, c.Size)
	if err != nil {
		return err
	}
	in, out, err := c.Open(c.In, c.Out, stream.Open)
	if err != nil {
		return err
	}
	defer in.Close()
	return decode.Run(in, decode.Options{Geometry: g, Model: c.Model, ImageRoot: c.ImageRoot,
		SkipBad: c.SkipBad, Workers: c.Workers, Args: args, Out: out, Stdout: stdout, Compress: c.Compress, Log: stderr})
}
