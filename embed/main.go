// Command embed adds CLIP embeddings to a clipline stream: image_embedding
// from pixels (or the images it decodes) and caption_embeddings from
// caption_tokens.
//
//	embed --model DIR|ID [--in FILE] [--out FILE] [--batch-size 64] [--no-normalize] [--dim N] [--device cpu|cpu,bf16|cuda] [--compress zstd]
package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/alecthomas/kong"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/device"
	"github.com/clipline/clipline/internal/embed"
	"github.com/clipline/clipline/internal/hub"
	"github.com/clipline/clipline/internal/shard"
	"github.com/clipline/clipline/internal/stream"
)

const description = `Embed images and captions with a CLIP model.

Reads an Arrow IPC stream (stdin by default) whose rows have pixels (decode)
and/or caption_tokens (tokenize), and writes it (stdout by default) with

  image_embedding     fixed_size_list<float32>[D]        from pixels
  caption_embeddings  list<fixed_size_list<float32>[D]>  from caption_tokens, one per caption

A stream without pixels but with image_bytes or image_path has its images
decoded by embed itself with the model's preprocessing, exactly as decode
--model DIR does (image_bytes first when there are both; relative paths
against --image-root); the pixels are not written.

L2-normalised (cosine similarity is then a dot product) unless
--no-normalize. --dim N keeps the first N dimensions and renormalises them
(Matryoshka-trained models). A stream with only one of the two input columns
gets only the matching output column.

The model is a Hugging Face CLIP checkpoint directory (config.json,
model.safetensors, preprocessor_config.json) or a hub id such as
openai/clip-vit-base-patch32, downloaded into the cache on first use. Pixels
must be at the model's image size (decode --model DIR); embed applies the
mean and std of its preprocessor_config.json. caption_tokens must come from
the model's vocabulary, with a context no longer than the model's (tokenize
--model DIR).

Images and captions of consecutive rows are packed into batches of
--batch-size; the model runs on all cores (or the GPU with --device cuda),
while reading, preprocessing and writing overlap with it. Other columns pass
through unchanged; the schema metadata gains clipline.embedding_dim,
clipline.model, clipline.model_hash (the model by content) and a provenance
entry. --split NAME embeds and writes only
that split's rows (embed --split test | rank skips embedding the training
rows). Throughput goes to stderr.`

type command struct {
	Model       string `required:"" placeholder:"DIR|ID" help:"Checkpoint directory or Hugging Face model id."`
	In          string `default:"-" placeholder:"FILE" stdin:"an Arrow stream of rows with pixels (or image_bytes, image_path) and/or caption_tokens; pass --in FILE or pipe one: tokenize ... | decode ... | embed --model DIR" help:"Input: an Arrow stream, IPC file or directory of parts (- is stdin)."`
	Out         string `default:"-" placeholder:"FILE" help:"Output (- is stdout, a stream); FILE.arrow is written as an Arrow IPC file (random access), other names as a stream; a file appears only when complete."`
	BatchSize   int    `default:"64" placeholder:"N" help:"Images or captions per forward pass."`
	NoNormalize bool   `help:"Write raw projections instead of L2-normalised embeddings."`
	Dim         int    `default:"0" placeholder:"N" help:"Keep the first N dimensions, renormalised; 0 keeps all."`
	Split       string `placeholder:"NAME" help:"Embed and write only the rows of this split (e.g. test); other rows are dropped."`
	ImageRoot   string `placeholder:"DIR" help:"Directory that relative image paths are resolved against when embed decodes images (default: the current directory)."`
	Device      string `default:"cpu" placeholder:"NAME" help:"Compute device: ${device_syntax}."`
	Compress    string `default:"none" enum:"none,zstd,lz4" placeholder:"NAME" help:"Compress the output buffers: none, zstd or lz4; readers detect it."`

	shard.Flags `embed:""`
}

func main() { cli.Main("embed", run) }

// run parses args and runs the stage; logs go to stderr.
func run(args []string, stdout, stderr io.Writer) error {
	var c command
	if ctx, err := cli.Parse("embed", description, &c, args, stdout, stderr,
		kong.Vars{"device_syntax": device.Syntax}); ctx == nil {
		return err
	}
	return c.run(args, stdout, stderr)
}

func (c *command) run(args []string, stdout, stderr io.Writer) error {
	if c.BatchSize < 1 {
		return fmt.Errorf("--batch-size %d must be positive", c.BatchSize)
	}
	if c.Dim < 0 {
		return fmt.Errorf("--dim %d must be positive", c.Dim)
	}
	// Open the input first: a missing file fails before any download. An
	// IPC file is read through a memory map, so its pixels cost no
	// anonymous memory (batches alias the map); others are read as streams.
	in, out, err := c.Open(c.In, c.Out, func(path string) (*stream.Reader, error) {
		r, err := stream.OpenMapped(path)
		if errors.Is(err, stream.ErrNotMappable) {
			return stream.Open(path)
		}
		return r, err
	})
	if err != nil {
		return err
	}
	defer in.Close()
	dir, err := hub.Model(c.Model, stderr)
	if err != nil {
		return err
	}
	be, err := device.Open(c.Device)
	if err != nil {
		return fmt.Errorf("--device %s: %w", c.Device, err)
	}
	defer device.Close(be)
	e, err := embed.Load(dir, be, embed.Options{BatchSize: c.BatchSize, Dim: c.Dim, NoNormalize: c.NoNormalize})
	if err != nil {
		return err
	}
	defer e.Close()
	st, err := e.Run(in, embed.RunOptions{
		Out: out, Stdout: stdout, Args: args, Model: c.Model, Compress: c.Compress, Split: c.Split, ImageRoot: c.ImageRoot, Progress: stderr,
	})
	if err != nil {
		return err
	}
	secs := st.Elapsed.Seconds()
	dropped := ""
	if c.Split != "" {
		dropped = fmt.Sprintf(" (%d rows of other splits dropped)", st.Dropped)
	}
	fmt.Fprintf(stderr, "embed: %d rows%s, %d images (%.1f/s), %d captions (%.1f/s), D=%d, in %.2fs on %s\n",
		st.Rows, dropped, st.Images, float64(st.Images)/max(secs, 1e-9), st.Captions, float64(st.Captions)/max(secs, 1e-9),
		e.Dim(), secs, be.Name())
	return nil
}
