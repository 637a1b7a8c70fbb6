// Package stream reads clipline data from Go programs outside this module:
// the Arrow IPC streams and IPC files every stage writes (docs/streams.md
// has the contract), told apart by their first bytes. It is a thin, stable
// face of the stages' own reader, so what it accepts and refuses is exactly
// what the stages do: zstd and lz4 buffers are read transparently, and an
// empty input, a non-Arrow input, a stream cut short (ErrTruncated) or a
// file without its footer is an error naming the input.
//
//	r, err := stream.Open("out/default/test.emb.arrow")
//	if err != nil { ... }
//	defer r.Close()
//	for r.Next() {
//		ids, _ := stream.Strings(r.Batch(), stream.ColImageID)
//		emb, _ := stream.ImageEmbeddings(r.Batch())
//		for i, id := range ids { use(id, emb.Row(i)) }
//	}
//	if err := r.Err(); err != nil { ... }
//
// Batches are arrow-go record batches (github.com/apache/arrow-go/v18), so
// any column can also be read with arrow-go itself.
package stream

import (
	"io"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/clipline/clipline/internal/stream"
)

// Column names of the stream contract.
const (
	ColImageID           = stream.ColImageID           // utf8
	ColSplit             = stream.ColSplit             // utf8: train, val, test, ...
	ColImagePath         = stream.ColImagePath         // utf8
	ColImageBytes        = stream.ColImageBytes        // binary: the encoded image file
	ColCaptions          = stream.ColCaptions          // list<utf8>
	ColCaptionTokens     = stream.ColCaptionTokens     // list<fixed_size_list<int32>[context]>
	ColPixels            = stream.ColPixels            // fixed_size_list<uint8>[size*size*3]
	ColImageEmbedding    = stream.ColImageEmbedding    // fixed_size_list<float32>[dim]
	ColCaptionEmbeddings = stream.ColCaptionEmbeddings // list<fixed_size_list<float32>[dim]>
)

// ErrTruncated is the error (errors.Is) of a stream that ends without its
// end-of-stream marker: a stage failed while writing it.
var ErrTruncated = stream.ErrTruncated

// Step is one stage that produced a stream: its name, arguments and version.
type Step = stream.Step

// Vectors is a fixed_size_list<float32> column (image_embedding) in flat
// form: Row(i) is row i's vector, Width the dimension.
type Vectors = stream.Vectors

// VectorLists is a list of vectors per row (caption_embeddings, aligned with
// captions): Count(i) vectors in row i, Item(i, j) the j-th.
type VectorLists = stream.VectorLists

// Reader iterates the record batches of one stream.
type Reader struct{ r *stream.Reader }

// Open reads the stream or IPC file at path, or the directory of parts
// (part-00000-of-00003.arrow, ...) that sharded stages write, in order as
// one input; "-" is stdin (refused when a terminal).
func Open(path string) (*Reader, error) {
	r, err := stream.Open(path)
	if err != nil {
		return nil, err
	}
	return &Reader{r}, nil
}

// NewReader reads a stream, or an IPC file in order, from rd; name is used
// in error messages.
func NewReader(rd io.Reader, name string) (*Reader, error) {
	r, err := stream.NewReader(rd, name)
	if err != nil {
		return nil, err
	}
	return &Reader{r}, nil
}

// Schema is the stream's schema, metadata included.
func (r *Reader) Schema() *arrow.Schema { return r.r.Schema() }

// Provenance is the stages that produced the stream, oldest first.
func (r *Reader) Provenance() ([]Step, error) { return stream.Provenance(r.r.Schema()) }

// Next advances to the next batch; false at the end or on an error (Err).
func (r *Reader) Next() bool { return r.r.Next() }

// Batch is the current batch, valid until Next (Retain it to keep it).
func (r *Reader) Batch() arrow.RecordBatch { return r.r.Batch() }

// NumBatches is the number of record batches of an IPC file (or directory
// of them) read through its footer, -1 for a stream or a pipe.
func (r *Reader) NumBatches() int { return r.r.NumBatches() }

// BatchAt reads record batch i (0-based) of an input that NumBatches
// counts, independently of Next; the caller Releases it.
func (r *Reader) BatchAt(i int) (arrow.RecordBatch, error) { return r.r.BatchAt(i) }

// Err is the error that stopped Next, if any.
func (r *Reader) Err() error { return r.r.Err() }

// Close releases the reader and closes the file Open opened.
func (r *Reader) Close() error { return r.r.Close() }

// Strings reads a utf8 column (image_id, split, image_path) of a batch.
func Strings(b arrow.RecordBatch, name string) ([]string, error) { return stream.Strings(b, name) }

// StringLists reads a list<utf8> column (captions) of a batch.
func StringLists(b arrow.RecordBatch, name string) ([][]string, error) {
	return stream.StringLists(b, name)
}

// ImageEmbeddings reads a batch's image_embedding column (zero-copy).
func ImageEmbeddings(b arrow.RecordBatch) (Vectors, error) { return stream.ImageEmbeddings(b) }

// ImageBytes reads a batch's image_bytes column, each row's encoded image
// file (JPEG, PNG, ...: image.Decode reads it). Zero-copy: the slices are
// the batch's memory, valid until the next call to Next.
func ImageBytes(b arrow.RecordBatch) ([][]byte, error) { return stream.Binaries(b, ColImageBytes) }

// CaptionEmbeddings reads a batch's caption_embeddings column (zero-copy).
func CaptionEmbeddings(b arrow.RecordBatch) (VectorLists, error) {
	return stream.CaptionEmbeddings(b)
}
