package stream

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/clipline/clipline/internal/atomicfile"
	"github.com/clipline/clipline/internal/cli"
)

// Defaults for Options.
const (
	DefaultBatchRows  = 256
	DefaultBatchBytes = 64 << 20
)

// Format is the Arrow IPC format a Writer writes.
type Format int

const (
	// FormatAuto picks by name: a path ending in .arrow or .feather is
	// written as an IPC file, anything else (.arrows, stdout, a writer) as a
	// stream.
	FormatAuto Format = iota
	// FormatStream is the IPC streaming format: messages and the
	// end-of-stream marker, readable as it arrives.
	FormatStream
	// FormatFile is the IPC file format (Feather v2): magic, the stream,
	// and a footer indexing the record batches for random access.
	FormatFile
)

// FormatFor is the format FormatAuto picks for path.
func FormatFor(path string) Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".arrow", ".feather":
		return FormatFile
	}
	return FormatStream
}

// Options configure a Writer.
type Options struct {
	// Format overrides the format chosen by the path's name (FormatAuto).
	Format Format
	// Compress is "" or "none" (uncompressed), "zstd" or "lz4" (lz4 frame),
	// applied per buffer as the Arrow IPC format defines.
	Compress string
	// BatchRows is the target rows per written batch (default DefaultBatchRows).
	BatchRows int
	// BatchBytes caps a written batch's estimated size so pixel-heavy rows
	// make smaller batches (default DefaultBatchBytes). A single row that is
	// larger still makes a batch of one row.
	BatchBytes int64
	// Stdout is where the path "" or "-" writes: the stdout a stage's run
	// was handed by cli.Main, or a test's buffer. Create refuses "-"
	// without it, so no stream bypasses the stage's stdout.
	Stdout io.Writer
}

// CompressionNames lists the accepted Options.Compress values.
var CompressionNames = []string{"none", "zstd", "lz4"}

func (o Options) withDefaults() Options {
	if o.BatchRows <= 0 {
		o.BatchRows = DefaultBatchRows
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = DefaultBatchBytes
	}
	return o
}

// Writer writes one clipline stream, re-batching rows to the target size.
//
// Files are written to a temporary file in the same directory and renamed
// over path by Close, so a complete-looking file only ever appears on
// success. On stdout nothing can be renamed: Abort (or exiting without Close)
// leaves the end-of-stream marker out, and Reader reports such a stream as
// truncated. A failing stage must therefore call Abort, not Close, and exit
// non-zero.
type Writer struct {
	name   string
	schema *arrow.Schema
	opts   Options
	bw     *bufio.Writer
	w      batchWriter
	f      *os.File // temporary file, or a special file written in place; nil on stdout
	tmp    string
	final  string // "" for a special file
	// untrack ends the temporary's registration for removal on a signal
	// (atomicfile.Track).
	untrack func()

	pending     []arrow.RecordBatch
	pendingRows int64
	rows        int64
	batches     int
	done        bool
}

// batchWriter is what ipc.Writer (stream) and ipc.FileWriter have in common.
type batchWriter interface {
	Write(arrow.RecordBatch) error
	Close() error
}

// Create starts a stream with the given schema at path; "" or "-" is
// opts.Stdout, which must not be a terminal (binary there helps nobody).
// The format follows the name (FormatFor) unless opts.Format says otherwise.
func Create(path string, schema *arrow.Schema, opts Options) (*Writer, error) {
	if opts.Format == FormatAuto && path != "" {
		opts.Format = FormatFor(path)
	}
	if path == "" || path == "-" {
		if opts.Stdout == nil {
			return nil, errors.New("stdout: no writer given (stream.Options.Stdout)")
		}
		if cli.IsTerminal(opts.Stdout) {
			return nil, errors.New("refusing to write a binary Arrow stream to a terminal; use --out FILE or a pipe")
		}
		return NewWriter(opts.Stdout, "stdout", schema, opts)
	}
	if atomicfile.Special(path) {
		// /dev/null or a named pipe: written in place (nothing to rename).
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		w, err := NewWriter(f, path, schema, opts)
		if err != nil {
			f.Close()
			return nil, err
		}
		w.f = f
		return w, nil
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	w, err := NewWriter(f, path, schema, opts)
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	w.f, w.tmp, w.final = f, f.Name(), path
	w.untrack = atomicfile.Track(w.tmp)
	return w, nil
}

// NewWriter writes a stream to out (not closed by the Writer); name is used
// in messages. FormatAuto is the stream format here.
func NewWriter(out io.Writer, name string, schema *arrow.Schema, opts Options) (*Writer, error) {
	opts = opts.withDefaults()
	ipcOpts := []ipc.Option{ipc.WithSchema(schema), ipc.WithAllocator(memory.DefaultAllocator)}
	switch opts.Compress {
	case "", "none":
	case "zstd":
		ipcOpts = append(ipcOpts, ipc.WithZstd(), ipc.WithCompressConcurrency(runtime.GOMAXPROCS(0)))
	case "lz4":
		ipcOpts = append(ipcOpts, ipc.WithLZ4(), ipc.WithCompressConcurrency(runtime.GOMAXPROCS(0)))
	default:
		return nil, fmt.Errorf("%s: unknown compression %q (want one of %v)", name, opts.Compress, CompressionNames)
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	w := &Writer{name: name, schema: schema, opts: opts, bw: bw}
	switch opts.Format {
	case FormatAuto, FormatStream:
		w.w = ipc.NewWriter(bw, ipcOpts...)
	case FormatFile:
		fw, err := ipc.NewFileWriter(bw, ipcOpts...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		w.w = fw
	default:
		return nil, fmt.Errorf("%s: unknown format %d", name, opts.Format)
	}
	return w, nil
}

// Schema is the schema the stream is written with.
func (w *Writer) Schema() *arrow.Schema { return w.schema }

// Name is the output's name as used in messages.
func (w *Writer) Name() string { return w.name }

// Rows counts the rows accepted so far.
func (w *Writer) Rows() int64 { return w.rows }

// Write queues rec's rows; full batches are written as they fill. rec's
// fields must match the writer's schema (metadata may differ). rec may be
// released by the caller after Write returns.
func (w *Writer) Write(rec arrow.RecordBatch) error {
	n := rec.NumRows()
	if n == 0 {
		return w.checkSchema(rec)
	}
	return w.writeRange(rec, 0, n, estimateBytes(rec)/n)
}

func (w *Writer) checkSchema(rec arrow.RecordBatch) error {
	if w.done {
		return fmt.Errorf("%s: write after close", w.name)
	}
	if !rec.Schema().Equal(w.schema) {
		return fmt.Errorf("%s: batch fields %v do not match the stream's fields %v", w.name, rec.Schema().Fields(), w.schema.Fields())
	}
	return nil
}

// writeRange queues rows [i, j) of rec; bytesPerRow sizes batches.
func (w *Writer) writeRange(rec arrow.RecordBatch, i, j, bytesPerRow int64) error {
	if err := w.checkSchema(rec); err != nil {
		return err
	}
	target := int64(w.opts.BatchRows)
	if bytesPerRow > 0 {
		target = min(target, max(1, w.opts.BatchBytes/bytesPerRow))
	}
	for i < j {
		take := min(target-w.pendingRows, j-i)
		if take <= 0 { // target shrank below what is pending
			if err := w.flush(); err != nil {
				return err
			}
			continue
		}
		w.pending = append(w.pending, rec.NewSlice(i, i+take))
		w.pendingRows += take
		w.rows += take
		i += take
		if w.pendingRows >= target {
			if err := w.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *Writer) flush() error {
	if len(w.pending) == 0 {
		return nil
	}
	defer func() {
		for _, p := range w.pending {
			p.Release()
		}
		w.pending, w.pendingRows = w.pending[:0], 0
	}()
	ncol := len(w.schema.Fields())
	cols := make([]arrow.Array, ncol)
	if len(w.pending) == 1 {
		copy(cols, w.pending[0].Columns())
	} else {
		parts := make([]arrow.Array, len(w.pending))
		for c := range ncol {
			for k, p := range w.pending {
				parts[k] = p.Column(c)
			}
			a, err := array.Concatenate(parts, memory.DefaultAllocator)
			if err != nil {
				return fmt.Errorf("%s: concatenating column %s: %w", w.name, w.schema.Field(c).Name, err)
			}
			defer a.Release()
			cols[c] = a
		}
	}
	out := array.NewRecordBatch(w.schema, cols, w.pendingRows)
	defer out.Release()
	w.batches++
	if err := w.w.Write(out); err != nil {
		return fmt.Errorf("%s: writing batch %d: %w", w.name, w.batches, err)
	}
	return nil
}

// Close writes the remaining rows and the end-of-stream marker (and an IPC
// file's footer), and for a file renames it into place. After a failed Close the output is removed (file)
// or left without its end marker (stdout).
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	if err := w.flush(); err != nil {
		w.Abort()
		return err
	}
	w.done = true
	if err := w.w.Close(); err != nil {
		w.removeTemp()
		return fmt.Errorf("%s: %w", w.name, err)
	}
	if err := w.bw.Flush(); err != nil {
		w.removeTemp()
		return fmt.Errorf("%s: %w", w.name, err)
	}
	if w.f == nil {
		return nil
	}
	if w.final == "" {
		err := w.f.Close()
		w.f = nil
		if err != nil {
			return fmt.Errorf("%s: %w", w.name, err)
		}
		return nil
	}
	err := w.f.Chmod(0o644)
	if err == nil {
		err = w.f.Close()
		w.f = nil
	}
	if err == nil {
		err = os.Rename(w.tmp, w.final)
	}
	if err != nil {
		w.removeTemp()
		return fmt.Errorf("%s: %w", w.name, err)
	}
	w.tmp = ""
	w.untrack()
	return nil
}

// Abort discards the output: the temporary file is removed; on stdout the
// end-of-stream marker is never written. Safe to call after Close (no-op),
// so `defer w.Abort()` is the idiom.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	for _, p := range w.pending {
		p.Release()
	}
	w.pending = nil
	w.removeTemp()
}

func (w *Writer) removeTemp() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	if w.tmp != "" {
		os.Remove(w.tmp)
		w.tmp = ""
		w.untrack()
	}
}

// estimateBytes sums the buffer sizes behind rec. For a slice this counts the
// whole parent, so callers that slice pass the parent's per-row estimate.
func estimateBytes(rec arrow.RecordBatch) int64 {
	var n int64
	for _, c := range rec.Columns() {
		n += dataBytes(c.Data())
	}
	return n
}

func dataBytes(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataBytes(c)
	}
	return n
}
