package stream

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/clipline/clipline/internal/cli"
)

// ErrTruncated reports a stream that ended without the end-of-stream marker:
// a writer that failed, or a file cut short. Readers never treat it as a
// normal end, so a failed stage cannot pass for a complete one.
var ErrTruncated = errors.New("stream ends without the end-of-stream marker (truncated, or the stage that wrote it failed)")

// Metadata of a single message is far smaller than this; the limit keeps a
// non-Arrow input from triggering a huge allocation.
const metadataSizeLimit = 64 << 20

// Reader iterates the record batches of one clipline stream.
type Reader struct {
	name   string
	closer io.Closer
	r      *ipc.Reader
	batch  arrow.RecordBatch
	index  int   // 1-based number of the current batch
	first  int64 // row number of the current batch's first row
	rows   int64 // rows read so far
	err    error
}

// InputName is how a path is named in messages ("stdin" for "" and "-").
func InputName(path string) string {
	if path == "" || path == "-" {
		return "stdin"
	}
	return path
}

// Open reads the stream at path; "" or "-" is stdin, refused when it is a
// terminal (stages say what they expect there earlier, in cli.Parse). The
// schema is read immediately, so empty and non-Arrow inputs fail here.
func Open(path string) (*Reader, error) {
	if path == "" || path == "-" {
		if cli.IsTerminal(os.Stdin) {
			return nil, cli.TerminalStdin("an Arrow stream; pass --in FILE or pipe one")
		}
		return NewReader(os.Stdin, "stdin")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// NewReader reads a stream from rd; name is used in error messages.
// zstd- and lz4-compressed streams are read transparently.
func NewReader(rd io.Reader, name string) (*Reader, error) {
	br := bufio.NewReaderSize(rd, 64<<10)
	head, err := br.Peek(8)
	if len(head) == 0 {
		if err == io.EOF {
			return nil, fmt.Errorf("%s: empty input, expected an Arrow IPC stream", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	switch {
	case bytes.HasPrefix(head, []byte("ARROW1")):
		return nil, fmt.Errorf("%s: this is an Arrow IPC file (random-access format); clipline reads the IPC stream format", name)
	case len(head) < 8 || binary.LittleEndian.Uint32(head) != 0xFFFFFFFF:
		return nil, fmt.Errorf("%s: not an Arrow IPC stream (starts with %q)", name, head)
	}
	mr := &eosMessageReader{br: br, inner: ipc.NewMessageReader(br, ipc.WithMetadataSizeLimit(metadataSizeLimit))}
	r, err := ipc.NewReaderFromMessageReader(mr, ipc.WithEnsureNativeEndian(true))
	if err != nil {
		return nil, fmt.Errorf("%s: reading schema: %w", name, err)
	}
	return &Reader{name: name, r: r}, nil
}

// Name is the input's name as used in messages.
func (r *Reader) Name() string { return r.name }

// Schema is the stream's schema, with its metadata.
func (r *Reader) Schema() *arrow.Schema { return r.r.Schema() }

// Meta returns a schema metadata value.
func (r *Reader) Meta(key string) (string, bool) { return Meta(r.Schema(), key) }

// MetaInt returns an integer schema metadata value (see MetaInt); errors
// name the input.
func (r *Reader) MetaInt(key string) (v int, ok bool, err error) {
	v, ok, err = MetaInt(r.Schema(), key)
	if err != nil {
		err = fmt.Errorf("%s: %w", r.name, err)
	}
	return v, ok, err
}

// Next advances to the next record batch. It returns false at the end of the
// stream or on error; check Err.
func (r *Reader) Next() bool {
	if r.err != nil {
		return false
	}
	if !r.r.Next() {
		if err := r.r.Err(); err != nil {
			r.err = fmt.Errorf("%s: batch %d (after row %d): %w", r.name, r.index+1, r.rows, err)
		}
		r.batch = nil
		return false
	}
	r.batch = r.r.RecordBatch()
	r.index++
	r.first = r.rows
	r.rows += r.batch.NumRows()
	return true
}

// Batch is the current record batch, valid until the next call to Next
// (Retain it to keep it longer).
func (r *Reader) Batch() arrow.RecordBatch { return r.batch }

// BatchIndex is the 1-based number of the current batch.
func (r *Reader) BatchIndex() int { return r.index }

// FirstRow is the 0-based stream row number of the current batch's first row.
func (r *Reader) FirstRow() int64 { return r.first }

// RowsRead counts the rows of all batches returned so far.
func (r *Reader) RowsRead() int64 { return r.rows }

// Err is the error that stopped iteration, if any; it names the input and batch.
func (r *Reader) Err() error { return r.err }

// Errorf returns an error prefixed with the input's name.
func (r *Reader) Errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", r.name, fmt.Errorf(format, args...))
}

// Require checks that the schema has each named clipline column with its
// contract type; the error names the input and the stage that adds it.
func (r *Reader) Require(cols ...string) error {
	if err := RequireColumns(r.Schema(), cols...); err != nil {
		return fmt.Errorf("%s: %w", r.name, err)
	}
	return nil
}

// Close releases the reader and closes the file it opened.
func (r *Reader) Close() error {
	r.r.Release()
	if r.closer != nil {
		err := r.closer.Close()
		r.closer = nil
		return err
	}
	return nil
}

// eosMessageReader tells the end-of-stream marker apart from the input simply
// ending: arrow-go treats both as a normal end, clipline treats the latter as
// truncation.
type eosMessageReader struct {
	br    *bufio.Reader
	inner ipc.MessageReader
}

func (m *eosMessageReader) Message() (*ipc.Message, error) {
	head, err := m.br.Peek(8)
	if len(head) == 0 {
		if err == io.EOF {
			return nil, ErrTruncated
		}
		return nil, err
	}
	if len(head) >= 4 && binary.LittleEndian.Uint32(head) == 0 {
		m.br.Discard(4) // legacy (pre-0.15) end-of-stream marker
		return nil, io.EOF
	}
	if len(head) == 8 && binary.LittleEndian.Uint32(head) == 0xFFFFFFFF && binary.LittleEndian.Uint32(head[4:]) == 0 {
		m.br.Discard(8)
		return nil, io.EOF
	}
	return m.inner.Message() // a partial prefix fails there with ErrUnexpectedEOF
}

func (m *eosMessageReader) Retain()  { m.inner.Retain() }
func (m *eosMessageReader) Release() { m.inner.Release() }
