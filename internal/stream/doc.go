// Package stream is clipline's stream contract: the Arrow IPC data that
// every stage reads and writes, as a stream (pipes, .arrows) or as an IPC
// file (.arrow: random access), see docs/streams.md.
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
// Reading: Open ("" or "-" is stdin) returns a Reader that iterates the
// record batches of a stream or an IPC file, told apart by their first
// bytes; a regular file in the file format is read through its footer, so
// NumBatches and BatchAt read batches at random and Shard restricts Next to
// a contiguous range of them; OpenMapped reads over a memory map. A
// directory of parts (PartName) is read in order as one input, checked
// first (all parts there, no strays, equal schemas). Compressed (zstd, lz4)
// buffers are read transparently. An empty input, a non-Arrow input, a
// stream that ends without its end-of-stream marker (ErrTruncated) and a
// file without its footer are errors naming the input and the batch.
//
// Writing: Create ("" or "-" is Options.Stdout, the stdout cli.Main handed
// the stage) returns a Writer: of an IPC file for a name ending in .arrow or
// .feather, of a stream otherwise (Options.Format overrides). It re-batches
// rows to Options.BatchRows (bounded by Options.BatchBytes) and optionally
// compresses. Files appear atomically on Close; Abort discards. On stdout a
// failed stage simply never writes the end-of-stream marker, which readers
// report as truncation: so a failing stage calls Abort (defer w.Abort() is
// safe after Close) and exits non-zero.
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
