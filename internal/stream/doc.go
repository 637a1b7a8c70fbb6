// Package stream is clipline's stream contract: the Arrow IPC stream format
// that every stage reads and writes (see docs/streams.md).
//
// One row per image. Columns (constants Col*, field constructors *Field):
//
//	image_id            utf8
//	split               utf8
//	image_path          utf8
//	captions            list<utf8>
//	caption_tokens      list<fixed_size_list<int32>[context]>   aligned with captions
//	pixels              fixed_size_list<uint8>[size*size*3]     HWC RGB, square
//	image_embedding     fixed_size_list<float32>[dim]
//	caption_embeddings  list<fixed_size_list<float32>[dim]>    aligned with captions
//
// Schema metadata (constants Meta*) carries the provenance of the stages that
// ran (WithProvenance, Provenance) and facts such as image size and context
// length (WithMeta, Meta, MetaInt).
//
// Reading: Open ("" or "-" is stdin) returns a Reader that iterates record
// batches; compressed (zstd, lz4) streams are read transparently. An empty
// input, a non-Arrow input and a stream that ends without its end-of-stream
// marker (ErrTruncated) are errors naming the input and the batch.
//
// Writing: Create ("" or "-" is Options.Stdout, the stdout cli.Main handed
// the stage) returns a Writer that re-batches rows to Options.BatchRows
// (bounded by Options.BatchBytes) and optionally compresses. Files appear
// atomically on Close; Abort discards. On stdout a failed stage simply never
// writes the end-of-stream marker, which readers report as truncation: so a
// failing stage calls Abort (defer w.Abort() is safe after Close) and exits
// non-zero.
//
// Columns: RequireColumns / Reader.Require check presence and type with
// errors such as "column caption_tokens missing; run tokenize first".
// Strings, StringLists, CaptionTokens, Pixels, ImageEmbeddings and
// CaptionEmbeddings read columns (the numeric ones zero-copy into flat
// slices); NewStrings, NewStringLists, NewCaptionTokens, NewPixels,
// NewImageEmbeddings and NewCaptionEmbeddings build them. SetColumns
// replaces or appends columns and passes every other column through.
// ReadEmbedded gathers a whole stream's embeddings, ids and captions (what
// rank ranks), optionally of one split.
//
// Transform wires a row-preserving or row-filtering stage: it reads each
// batch, calls the stage's function for new columns (and an optional keep
// mask), and writes the result with provenance appended.
package stream
