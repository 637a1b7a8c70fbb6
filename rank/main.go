// Command rank measures text-to-image and image-to-text retrieval on
// embedded rows: Recall@1/5/10, MRR and NDCG@10 as JSON on stdout, a table
// on stderr, and optionally each query's top K as an Arrow stream.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/metrics"
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

stdout: {"t2i": {"r1","r5","r10","mrr","ndcg10"}, "i2t": {...}, "rsum",
"images", "queries"}: recalls as fractions in [0,1], rsum the sum of the six
recalls, images the gallery images, queries the caption queries.`

type command struct {
	In           string `default:"-" placeholder:"FILE" help:"Embedded rows (- is stdin)."`
	Split        string `placeholder:"NAME" help:"Keep only the rows of this split (e.g. test)."`
	Gallery      string `placeholder:"FILE" type:"existingfile" help:"Rank the captions of --in against this stream's images instead of its own."`
	GallerySplit string `placeholder:"NAME" help:"Keep only the gallery rows of this split."`
	TopK         int    `name:"top-k" default:"0" placeholder:"K" help:"Keep each query's best K results (needs --results)."`
	Results      string `placeholder:"FILE" help:"Write each query's top K as an Arrow stream (atomically)."`
	Compress     string `default:"none" enum:"none,zstd,lz4" help:"Compress the --results stream."`
	Workers      int    `default:"0" help:"Goroutines (0: all cores)."`
}

func main() {
	cli.Main("rank", func(args []string, stdout, stderr io.Writer) error {
		return run(args, os.Stdin, stdout, stderr)
	})
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
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

	in, err := open(c.In, stdin)
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
		if err := writeResults(c.Results, c.Compress, in.Schema(), args, queries, gallery, t2i, i2t, res); err != nil {
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
	_, err = stdout.Write(js)
	return err
}

func open(path string, stdin io.Reader) (*stream.Reader, error) {
	if path == "" || path == "-" {
		return stream.NewReader(stdin, "stdin")
	}
	return stream.Open(path)
}

// writeResults writes one row per query with its top K, best first.
func writeResults(path, compress string, inSchema *arrow.Schema, args []string, q, g *stream.Embedded, t2i, i2t metrics.Relevance, res metrics.Result) error {
	fields := []arrow.Field{
		{Name: "direction", Type: arrow.BinaryTypes.String},
		{Name: "query_id", Type: arrow.BinaryTypes.String},
		{Name: "query_text", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "query_index", Type: arrow.PrimitiveTypes.Int32},
		{Name: "first_relevant_rank", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "result_ids", Type: arrow.ListOf(arrow.BinaryTypes.String)},
		{Name: "result_texts", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "result_indices", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
		{Name: "scores", Type: arrow.ListOf(arrow.PrimitiveTypes.Float32)},
		{Name: "relevant", Type: arrow.ListOf(arrow.FixedWidthTypes.Boolean)},
	}
	md := arrow.NewMetadata(nil, nil)
	schema := arrow.NewSchema(fields, &md)
	if steps, err := stream.Provenance(inSchema); err == nil && len(steps) > 0 {
		b, _ := json.Marshal(steps)
		schema = stream.WithMeta(schema, stream.MetaProvenance, string(b))
	}
	schema = stream.WithProvenance(schema, "rank", args)
	w, err := stream.Create(path, schema, stream.Options{Compress: compress})
	if err != nil {
		return err
	}
	defer w.Abort()

	// Caption c's row and text.
	capRow := make([]int32, 0, q.NumCaptions())
	capText := make([]string, 0, q.NumCaptions())
	for r, caps := range q.Captions {
		for _, t := range caps {
			capRow = append(capRow, int32(r))
			capText = append(capText, t)
		}
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	dir := b.Field(0).(*array.StringBuilder)
	qid := b.Field(1).(*array.StringBuilder)
	qtext := b.Field(2).(*array.StringBuilder)
	qidx := b.Field(3).(*array.Int32Builder)
	frr := b.Field(4).(*array.Int32Builder)
	rids := b.Field(5).(*array.ListBuilder)
	rtexts := b.Field(6).(*array.ListBuilder)
	ridx := b.Field(7).(*array.ListBuilder)
	rsc := b.Field(8).(*array.ListBuilder)
	rrel := b.Field(9).(*array.ListBuilder)
	rows := 0
	flush := func() error {
		rec := b.NewRecordBatch()
		defer rec.Release()
		rows = 0
		return w.Write(rec)
	}
	emit := func(direction string, query int, id string, text *string, d metrics.Direction, rel metrics.Relevance, resultID func(int32) string, resultText func(int32) (string, bool)) error {
		dir.Append(direction)
		qid.Append(id)
		if text != nil {
			qtext.Append(*text)
		} else {
			qtext.AppendNull()
		}
		qidx.Append(int32(query))
		if fr := d.FirstRank[query]; fr > 0 {
			frr.Append(fr)
		} else {
			frr.AppendNull()
		}
		relSet := rel.Of(query)
		k := d.Top.K
		items := d.Top.Items[query*k : (query+1)*k]
		scs := d.Top.Scores[query*k : (query+1)*k]
		for _, l := range []*array.ListBuilder{rids, ridx, rsc, rrel} {
			l.Append(true)
		}
		withTexts := resultText != nil
		if withTexts {
			rtexts.Append(true)
		} else {
			rtexts.AppendNull()
		}
		for j, it := range items {
			if it < 0 {
				break
			}
			rids.ValueBuilder().(*array.StringBuilder).Append(resultID(it))
			if withTexts {
				t, _ := resultText(it)
				rtexts.ValueBuilder().(*array.StringBuilder).Append(t)
			}
			ridx.ValueBuilder().(*array.Int32Builder).Append(it)
			rsc.ValueBuilder().(*array.Float32Builder).Append(scs[j])
			isRel := slices.Contains(relSet, it)
			rrel.ValueBuilder().(*array.BooleanBuilder).Append(isRel)
		}
		if rows++; rows == 1024 {
			return flush()
		}
		return nil
	}
	galleryID := func(i int32) string { return g.IDs[i] }
	for c := range capText {
		if err := emit("t2i", c, q.IDs[capRow[c]], &capText[c], res.T2I, t2i, galleryID, nil); err != nil {
			return err
		}
	}
	captionID := func(i int32) string { return q.IDs[capRow[i]] }
	captionText := func(i int32) (string, bool) { return capText[i], true }
	for i := range g.IDs {
		if err := emit("i2t", i, g.IDs[i], nil, res.I2T, i2t, captionID, captionText); err != nil {
			return err
		}
	}
	if rows > 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	return w.Close()
}
