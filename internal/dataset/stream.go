package dataset

import (
	"fmt"
	"io"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/clipline/clipline/internal/shard"
	"github.com/clipline/clipline/internal/stream"
)

// Schema is the stream prepare writes: image_id, split, image_path and
// captions.
func Schema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		stream.ImageIDField(), stream.SplitField(), stream.ImagePathField(), stream.CaptionsField(),
	}, nil)
}

// WriteOptions configure Write.
type WriteOptions struct {
	Out      string    // output path; "" or "-" is Stdout
	Stdout   io.Writer // where "-" goes (stream.Create refuses a terminal)
	Compress string    // "", "none", "zstd" or "lz4"
	Args     []string  // prepare's arguments, recorded in provenance
	Log      io.Writer // receives the summary line; nil for silence
	Start    time.Time // when the stage began, for the summary's time
	// Part, when sharded, writes only that part's contiguous range of the
	// rows (all of them validated), so the parts concatenate to the whole.
	Part shard.Spec
}

// batchRows is how many rows go into one record batch handed to the writer
// (which re-batches to its own target size).
const batchRows = 4096

// Write validates rows and writes them (o.Part's share) as prepare's
// stream, with a provenance entry for prepare. Nothing is written when rows
// are invalid, and a file appears only once complete.
func Write(rows []Row, o WriteOptions) (err error) {
	if err := Validate(rows); err != nil {
		return err
	}
	part := ""
	if o.Part.Sharded() {
		part = fmt.Sprintf(" (part %s of %d)", o.Part, len(rows))
		lo, hi := o.Part.Range(len(rows))
		rows = rows[lo:hi]
	}
	schema := stream.WithProvenance(Schema(), "prepare", o.Args)
	w, err := stream.Create(o.Out, schema, stream.Options{Compress: o.Compress, Stdout: o.Stdout})
	if err != nil {
		return err
	}
	defer w.Abort() // no-op after a successful Close
	for lo := 0; lo < len(rows); lo += batchRows {
		if err := writeBatch(w, rows[lo:min(lo+batchRows, len(rows))]); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	if o.Log != nil {
		fmt.Fprintf(o.Log, "prepare: %d images%s (%s), %d captions -> %s in %.1fs\n",
			len(rows), part, FormatCounts(SplitCounts(rows)), CaptionCount(rows), w.Name(), time.Since(o.Start).Seconds())
	}
	return nil
}

// writeBatch writes rows as one record batch of w's schema.
func writeBatch(w *stream.Writer, rows []Row) error {
	ids := make([]string, len(rows))
	splits := make([]string, len(rows))
	paths := make([]string, len(rows))
	caps := make([][]string, len(rows))
	for i, r := range rows {
		ids[i], splits[i], paths[i], caps[i] = r.ImageID, r.Split, r.ImagePath, r.Captions
	}
	cols := []arrow.Array{stream.NewStrings(ids), stream.NewStrings(splits), stream.NewStrings(paths), stream.NewStringLists(caps)}
	rec := array.NewRecordBatch(w.Schema(), cols, int64(len(rows)))
	for _, c := range cols {
		c.Release()
	}
	defer rec.Release()
	return w.Write(rec)
}
