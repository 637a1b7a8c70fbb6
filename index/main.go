// Command index writes a search index bundle from embed's output: the
// vectors, unit length and packed for the search kernel, the rows they
// belong to as an Arrow IPC file, and a manifest naming the model.
//
//	index --out DIR [--in FILE] [--split NAME] [--captions] [--faiss] [--report FILE]
package main

import (
	"errors"
	"io"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/index"
	"github.com/clipline/clipline/internal/stream"
)

const description = `Build a search index bundle from embedded rows.

Reads an Arrow IPC stream (stdin by default) of embed's output and writes
the bundle directory --out DIR, which serve opens:

  manifest.json   kind (images or captions), dim, count, metric (cosine),
                  the model (clipline.model_hash and clipline.model), the
                  stream's provenance and this step, created time
  meta.arrow      an Arrow IPC file (random access: pyarrow.ipc.open_file,
                  polars.read_ipc) with one row per indexed item, in index
                  order: image_id, image_path, split, captions and the other
                  columns that passed through (not pixels, caption_tokens or
                  the embeddings)
  vectors.panels  the vectors as little-endian float32, packed as the search
                  kernel reads them; serve memory-maps it
  faiss.index     with --faiss: the same vectors as a FAISS IndexFlatIP (row
                  i is row i of meta.arrow), for faiss.read_index
  report.json     with --report FILE: that file, e.g. report's JSON, which
                  serve shows

By default each row's image_embedding is indexed (an image_id appears once);
--captions indexes caption_embeddings instead, one row per caption (columns
image_id, image_path, split, caption), for image-to-text search. Vectors are
scaled to unit length; a zero, NaN or infinite vector fails naming the row
and image_id.

The bundle is written in a temporary directory beside DIR and renamed into
place when complete: a failure leaves no bundle, and an earlier bundle at
DIR is replaced at once. A DIR that holds anything but a bundle is refused.`

type command struct {
	In       string `default:"-" placeholder:"FILE" stdin:"an Arrow stream of embedded rows; pass --in FILE or pipe one: embed ... | index --out DIR" help:"Embedded rows (- is stdin)."`
	Out      string `required:"" placeholder:"DIR" help:"The bundle directory to write (replaced whole when it holds a bundle)."`
	Split    string `placeholder:"NAME" help:"Index only the rows of this split (e.g. test)."`
	Captions bool   `help:"Index caption_embeddings, one row per caption, instead of image_embedding."`
	Faiss    bool   `help:"Also write faiss.index, a FAISS IndexFlatIP of the same vectors."`
	Report   string `placeholder:"FILE" type:"existingfile" help:"Copy this JSON file into the bundle as report.json (report's output)."`
}

func main() { cli.Main("index", run) }

func run(args []string, stdout, stderr io.Writer) error {
	var c command
	if ctx, err := cli.Parse("index", description, &c, args, stdout, stderr); ctx == nil {
		return err
	}
	if c.Out == "-" {
		return errors.New("--out names the bundle directory to write; a bundle cannot go to stdout")
	}
	in, err := stream.Open(c.In)
	if err != nil {
		return err
	}
	defer in.Close()
	_, err = index.Build(in, c.Out, index.BuildOptions{Split: c.Split, Captions: c.Captions, Faiss: c.Faiss,
		Report: c.Report, Progress: stderr, Args: args})
	return err
}
