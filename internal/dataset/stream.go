package dataset

import (
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/parallel"
	"github.com/clipline/clipline/internal/shard"
	"github.com/clipline/clipline/internal/stream"
)

// ColURL is the url column (utf8, null where unknown) of sources that say
// where each image was downloaded from. It is not part of the stream
// contract: stages pass it through.
const ColURL = "url"

// Columns says which of the optional columns a prepared stream has.
type Columns struct {
	ImagePath  bool // image_path: the sources that name image files
	ImageBytes bool // image_bytes: the sources that carry the images
	URL        bool // url
}

// ColumnsOf is the columns rows need: each optional one that any row has.
func ColumnsOf(rows []Row) Columns {
	var c Columns
	for _, r := range rows {
		c.ImagePath = c.ImagePath || r.ImagePath != ""
		c.ImageBytes = c.ImageBytes || len(r.ImageBytes) > 0
		c.URL = c.URL || r.URL != ""
	}
	return c
}

// Schema is the stream prepare writes: image_id, split, image_path and
// captions.
func Schema() *arrow.Schema { return Columns{ImagePath: true}.Schema() }

// Schema is prepare's stream with these columns: image_id, split, then
// image_path, image_bytes as present, captions, and url last.
func (c Columns) Schema() *arrow.Schema {
	fields := []arrow.Field{stream.ImageIDField(), stream.SplitField()}
	if c.ImagePath {
		fields = append(fields, stream.ImagePathField())
	}
	if c.ImageBytes {
		fields = append(fields, stream.ImageBytesField())
	}
	fields = append(fields, stream.CaptionsField())
	if c.URL {
		fields = append(fields, arrow.Field{Name: ColURL, Type: arrow.BinaryTypes.String, Nullable: true})
	}
	return arrow.NewSchema(fields, nil)
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
	// EmbedImages adds image_bytes: each row's image file as stored, read
	// as the row is written (its image_path is kept), so the stream is
	// self-contained.
	EmbedImages bool

	part  string // the summary's note of the part written
	first int    // the dataset row of the part's first, for errors
}

// batchRows and batchBytes bound the rows (and their image bytes) that go
// into one record batch handed to the writer (which re-batches to its own
// target size), so streamed images are held a batch at a time.
const (
	batchRows  = 4096
	batchBytes = 64 << 20
)

// Write validates rows and writes them (o.Part's share) as prepare's
// stream, with a provenance entry for prepare. Nothing is written when rows
// are invalid, and a file appears only once complete.
func Write(rows []Row, o WriteOptions) error {
	if err := Validate(rows); err != nil {
		return err
	}
	cols := ColumnsOf(rows) // the whole dataset's, so that every part has them
	if o.Part.Sharded() {
		o.part = fmt.Sprintf(" (part %s of %d)", o.Part, len(rows))
		lo, hi := o.Part.Range(len(rows))
		rows, o.first = rows[lo:hi], lo
	}
	w, err := NewWriter(cols, o)
	if err != nil {
		return err
	}
	defer w.Abort() // no-op after a successful Close
	for lo := 0; lo < len(rows); lo += readAhead {
		chunk := rows[lo:min(lo+readAhead, len(rows))]
		if o.EmbedImages {
			// A copy, so that the caller's rows keep no image bytes.
			chunk = slices.Clone(chunk)
			if err := readImages(chunk, o.first+lo); err != nil {
				return err
			}
		}
		for _, r := range chunk {
			if err := w.Add(r); err != nil {
				return err
			}
		}
	}
	return w.Close()
}

// readAhead image files are read at once by imageReaders goroutines for
// --embed-images: file systems that clusters keep datasets on (NFS, Lustre,
// object-store mounts) answer one read slowly but many in parallel well.
const (
	readAhead    = 64
	imageReaders = 8
)

// readImages fills rows' ImageBytes from their files in parallel; first is
// rows[0]'s row in the dataset, for the error of the first that fails.
func readImages(rows []Row, first int) error {
	errs := make([]error, len(rows))
	parallel.Tasks(imageReaders, len(rows), func(i, _ int) { errs[i] = embedImage(&rows[i], first+i) })
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Writer writes prepare's stream row by row, for sources too large to hold
// (webdataset shards, parquet files): it checks each row as Validate does
// and holds one batch of rows at a time.
type Writer struct {
	o      WriteOptions
	w      *stream.Writer
	check  *checker
	batch  []Row
	bytes  int
	counts map[string]int
	caps   int
}

// NewWriter starts prepare's stream with the columns cols at o.Out, with a
// provenance entry for prepare.
func NewWriter(cols Columns, o WriteOptions) (*Writer, error) {
	cols.ImageBytes = cols.ImageBytes || o.EmbedImages
	schema := stream.WithProvenance(cols.Schema(), "prepare", o.Args)
	w, err := stream.Create(o.Out, schema, stream.Options{Compress: o.Compress, Stdout: o.Stdout})
	if err != nil {
		return nil, err
	}
	return &Writer{o: o, w: w, check: newChecker(cols), counts: map[string]int{}}, nil
}

// Add checks and queues one row. It keeps r's slices until the batch is
// written: the caller must not reuse them.
func (w *Writer) Add(r Row) error {
	if w.o.EmbedImages {
		if err := embedImage(&r, w.o.first+w.check.n); err != nil {
			return err
		}
	}
	if err := w.check.check(r); err != nil {
		return err
	}
	w.batch = append(w.batch, r)
	w.bytes += len(r.ImageBytes)
	w.counts[r.Split]++
	w.caps += len(r.Captions)
	if len(w.batch) >= batchRows || w.bytes >= batchBytes {
		return w.flush()
	}
	return nil
}

// embedImage reads r's image file into r.ImageBytes unless it has them (or
// no file); the file must be an image decode reads. row names r in errors.
func embedImage(r *Row, row int) error {
	if len(r.ImageBytes) > 0 || r.ImagePath == "" {
		return nil
	}
	data, err := os.ReadFile(r.ImagePath)
	if err == nil && imageproc.Format(data) == "" {
		err = fmt.Errorf("%s: not a JPEG, PNG, GIF, WebP or BMP image", r.ImagePath)
	}
	if err != nil {
		return fmt.Errorf("row %d (%s): --embed-images: %w", row, r.ImageID, err)
	}
	r.ImageBytes = data
	return nil
}

// Close writes what is queued, completes the stream (the file appears) and
// logs the summary line. No rows at all is an error, and nothing is written,
// except in a part (a dataset may have fewer rows than parts).
func (w *Writer) Close() error {
	if w.check.n == 0 && !w.o.Part.Sharded() {
		w.Abort()
		return errNoRows
	}
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.w.Close(); err != nil {
		return err
	}
	if w.o.Log != nil {
		fmt.Fprintf(w.o.Log, "prepare: %d images%s (%s), %d captions -> %s in %.1fs\n",
			w.check.n, w.o.part, FormatCounts(w.counts), w.caps, w.w.Name(), time.Since(w.o.Start).Seconds())
	}
	return nil
}

// Abort removes the unfinished output; a no-op after a successful Close.
func (w *Writer) Abort() { w.w.Abort() }

// flush writes the queued rows as one record batch.
func (w *Writer) flush() error {
	if len(w.batch) == 0 {
		return nil
	}
	rows := w.batch
	w.batch, w.bytes = w.batch[:0], 0
	cols := w.check.cols
	ids := make([]string, len(rows))
	splits := make([]string, len(rows))
	caps := make([][]string, len(rows))
	for i, r := range rows {
		ids[i], splits[i], caps[i] = r.ImageID, r.Split, r.Captions
	}
	arrs := []arrow.Array{stream.NewStrings(ids), stream.NewStrings(splits)}
	if cols.ImagePath {
		paths := make([]string, len(rows))
		for i, r := range rows {
			paths[i] = r.ImagePath
		}
		arrs = append(arrs, stream.NewStrings(paths))
	}
	if cols.ImageBytes {
		images := make([][]byte, len(rows))
		for i, r := range rows {
			images[i] = r.ImageBytes
		}
		arrs = append(arrs, stream.NewBinaries(images))
	}
	arrs = append(arrs, stream.NewStringLists(caps))
	if cols.URL {
		arrs = append(arrs, newURLs(rows))
	}
	rec := array.NewRecordBatch(w.w.Schema(), arrs, int64(len(rows)))
	for _, a := range arrs {
		a.Release()
	}
	defer rec.Release()
	clear(rows) // drop the images before the next batch fills
	return w.w.Write(rec)
}

// newURLs builds the url column, null where a row has none.
func newURLs(rows []Row) arrow.Array {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	for _, r := range rows {
		if r.URL == "" {
			b.AppendNull()
		} else {
			b.Append(r.URL)
		}
	}
	return b.NewArray()
}
