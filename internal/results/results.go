// Package results writes rank's per-query results as an Arrow stream: each
// text-to-image and image-to-text query with its top K gallery items, best
// first, their scores and whether each is relevant.
//
// Columns: direction ("t2i" or "i2t"), query_id, query_text (captions
// only), query_index, first_relevant_rank (null without a relevant item),
// and lists result_ids, result_texts (captions only), result_indices,
// scores and relevant.
package results

import (
	"encoding/json"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/clipline/clipline/internal/metrics"
	"github.com/clipline/clipline/internal/stream"
)

// Ranked is what Write writes: rank's inputs and its result (with
// Options.TopK set).
type Ranked struct {
	Queries *stream.Embedded // the caption queries (and, without a gallery, the images)
	Gallery *stream.Embedded // the images ranked against
	// T2I and I2T are the relevance the result was ranked with.
	T2I, I2T metrics.Relevance
	Result   metrics.Result
}

// Write writes one row per query with its top K, best first, to path ("-"
// is opts.Stdout), atomically. The schema carries the provenance of in (the
// queries' stream) and then rank's, with args.
func Write(path string, opts stream.Options, in *arrow.Schema, args []string, r Ranked) error {
	q, g, t2i, i2t, res := r.Queries, r.Gallery, r.T2I, r.I2T, r.Result
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
	if steps, err := stream.Provenance(in); err == nil && len(steps) > 0 {
		b, _ := json.Marshal(steps)
		schema = stream.WithMeta(schema, stream.MetaProvenance, string(b))
	}
	schema = stream.WithProvenance(schema, "rank", args)
	w, err := stream.Create(path, schema, opts)
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
