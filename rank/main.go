// Command rank measures text-to-image and image-to-text retrieval on
// embedded rows: Recall@1/5/10, MRR and NDCG@10 as JSON on stdout, a table
// on stderr, and optionally each query's top K as an Arrow stream.
//
//	rank [--in FILE] [--out FILE] [--split NAME] [--gallery FILE] [--top-k N --results FILE]
package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/metrics"
	"github.com/clipline/clipline/internal/results"
	"github.com/clipline/clipline/internal/stream"
)

const description = `Rank embedded rows and report retrieval metrics.

Reads an Arrow IPC stream (stdin by default) of embedded rows (embed's
output: image_embedding, captions, caption_embeddings) and ranks both ways:
text to image (each caption a query over the images) and image to text (each
image a query over all captions). Scores are dot products (cosine similarity
for embed's normalised embeddings).

Relevance: a caption is relevant to every image whose captions hold the same
text (multi-positive); an image's relevant captions are its own. With
--gallery, the captions of stdin are ranked against the gallery stream's
images: a caption is relevant to gallery images with its row's image_id or
holding the same caption text, and image to text uses the same relation.

Ranks: higher score first; equal scores are ordered by row (captions numbered
in row order), the lower row first. Recall@K counts a query as a hit when a
relevant item is within the top K; MRR averages 1/rank of the first relevant
item; NDCG@10 uses binary relevance with the ideal DCG over min(#relevant, 10).
Queries without any relevant item are left out (and counted on stderr).

stdout (or --out FILE): {"t2i": {"r1","r5","r10","mrr","ndcg10"}, "i2t": {...}, "rsum",
"images", "queries"}: recalls as fractions in [0,1], rsum the sum of the six
recalls, images the gallery images, queries the caption queries.`

type command struct {
	In           string `default:"-" placeholder:"FILE" stdin:"an Arrow stream of embedded rows; pass --in FILE or pipe one: embed ... | rank" help:"Embedded rows (- is stdin)."`
	Out          string `default:"-" placeholder:"FILE" help:"Write the metrics JSON here (atomically; - is stdout)."`
	Split        string `placeholder:"NAME" help:"Keep only the rows of this split (e.g. test)."`
	Gallery      string `placeholder:"FILE" type:"existingfile" help:"Rank the captions of --in against this stream's images instead of its own."`
	GallerySplit string `placeholder:"NAME" help:"Keep only the gallery rows of this split."`
	TopK         int    `name:"top-k" default:"0" placeholder:"N" help:"Keep each query's best N results (needs --results)."`
	Results      string `placeholder:"FILE" help:"Write each query's top N as an Arrow stream (atomically)."`
	Compress     string `default:"none" enum:"none,zstd,lz4" placeholder:"NAME" help:"Compress the --results stream: none, zstd or lz4."`
	Workers      int    `default:"0" placeholder:"N" help:"Goroutines ranking; 0 for all cores."`
}

func main() { cli.Main("rank", run) }

func run(args []string, stdout, stderr io.Writer) error {
	var c command
	if ctx, err := cli.Parse("rank", description, &c, args, stdout, stderr); ctx == nil {
		return err
	}
	if (c.TopK > 0) != (c.Results != "") {
		return errors.New("--top-k and --results go together")
	}
	if c.TopK < 0 {
		return errors.New("--top-k must be positive")
	}
	start := time.Now()

	in, err := stream.Open(c.In)
	if err != nil {
		return err
	}
	defer in.Close()
	queries, err := stream.ReadEmbedded(in, stream.Gather{Captions: true, Images: c.Gallery == "", Split: c.Split})
	if err != nil {
		return err
	}
	gallery := queries
	var t2i, i2t metrics.Relevance
	if c.Gallery != "" {
		g, err := stream.Open(c.Gallery)
		if err != nil {
			return err
		}
		defer g.Close()
		// The gallery's captions, when it has them, also decide relevance.
		withCaps := stream.HasColumn(g.Schema(), stream.ColCaptions)
		gallery, err = stream.ReadEmbedded(g, stream.Gather{Images: true, CaptionTexts: withCaps, Split: c.GallerySplit})
		if err != nil {
			return err
		}
		if gallery.Dim != queries.Dim {
			return fmt.Errorf("%s: image embeddings have dimension %d, the captions of %s %d", c.Gallery, gallery.Dim, stream.InputName(c.In), queries.Dim)
		}
		t2i, i2t = metrics.WithGallery(queries.IDs, queries.Captions, gallery.IDs, gallery.Captions)
	} else {
		t2i, i2t = metrics.SingleStream(queries.Captions)
	}

	res, err := metrics.Rank(metrics.Input{Dim: queries.Dim, Captions: queries.CaptionEmb, Images: gallery.ImageEmb, T2I: t2i, I2T: i2t},
		metrics.Options{TopK: c.TopK, Workers: c.Workers})
	if err != nil {
		return fmt.Errorf("%s: %w", stream.InputName(c.In), err)
	}
	if c.Results != "" {
		ranked := results.Ranked{Queries: queries, Gallery: gallery, T2I: t2i, I2T: i2t, Result: res}
		if err := results.Write(c.Results, stream.Options{Compress: c.Compress, Stdout: stdout}, in.Schema(), args, ranked); err != nil {
			return err
		}
	}

	sum := res.Summary(len(gallery.IDs), queries.NumCaptions())
	where := ""
	if c.Split != "" {
		where = fmt.Sprintf(" (split %s)", c.Split)
	}
	fmt.Fprintf(stderr, "rank: %d images, %d captions%s, dim %d, %s kernel, %.1fs\n", sum.Images, sum.Queries, where, queries.Dim, res.Kernel, time.Since(start).Seconds())
	sum.Table(stderr)
	js, err := sum.JSON()
	if err != nil {
		return err
	}
	return cli.WriteOut(c.Out, stdout, js)
}
