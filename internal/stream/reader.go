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

// fileMagic starts and ends an Arrow IPC file; at the start it is padded to 8 bytes.
const fileMagic = "ARROW1"

// Reader iterates the record batches of one clipline input: a stream, or an
// IPC file (through its footer when it is a regular file, so batches can
// also be read at random: NumBatches, BatchAt).
type Reader struct {
	name   string
	schema *arrow.Schema
	parts  []*part
	cur    int  // the part being read
	random bool // every part is an IPC file read through its footer
	pos    int  // next batch to read, when random
	batch  arrow.RecordBatch
	index  int   // 1-based number of the current batch
	first  int64 // row number of the current batch's first row
	rows   int64 // rows read so far
	err    error
}

// part is one file of a Reader's input.
type part struct {
	name   string
	closer io.Closer       // what Close closes; nil for stdin or a caller's reader
	file   *ipc.FileReader // an IPC file read through its footer
	seq    *ipc.Reader     // else read in order
	// footer is set when seq reads an IPC file sequentially (a pipe): the
	// rest after the end-of-stream marker must be the file's footer.
	footer *bufio.Reader
}

// InputName is how a path is named in messages ("stdin" for "" and "-").
func InputName(path string) string {
	if path == "" || path == "-" {
		return "stdin"
	}
	return path
}

// Open reads the stream or IPC file at path, telling the formats apart by
// their first bytes; "" or "-" is stdin, refused when it is a terminal
// (stages say what they expect there earlier, in cli.Parse). The schema is
// read immediately, so empty and non-Arrow inputs fail here.
func Open(path string) (*Reader, error) {
	if path == "" || path == "-" {
		if cli.IsTerminal(os.Stdin) {
			return nil, cli.TerminalStdin("an Arrow stream; pass --in FILE or pipe one")
		}
		p, err := openPart(os.Stdin, "stdin")
		if err != nil {
			return nil, err
		}
		return newReader("stdin", []*part{p}), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	p, err := openPart(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	p.closer = f
	return newReader(path, []*part{p}), nil
}

// NewReader reads a stream from rd, or an IPC file in order (as from a
// pipe); name is used in error messages. zstd- and lz4-compressed buffers
// are read transparently.
func NewReader(rd io.Reader, name string) (*Reader, error) {
	p, err := seqPart(rd, name)
	if err != nil {
		return nil, err
	}
	return newReader(name, []*part{p}), nil
}

func newReader(name string, parts []*part) *Reader {
	r := &Reader{name: name, parts: parts, random: true}
	for _, p := range parts {
		r.random = r.random && p.file != nil
	}
	if p := parts[0]; p.file != nil {
		r.schema = p.file.Schema()
	} else {
		r.schema = p.seq.Schema()
	}
	return r
}

// openPart reads f through its footer when it is a regular file, read from
// its start, in the IPC file format; anything else in order.
func openPart(f *os.File, name string) (*part, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return seqPart(f, name)
	}
	if off, err := f.Seek(0, io.SeekCurrent); err != nil || off != 0 {
		return seqPart(f, name)
	}
	var head [len(fileMagic)]byte
	if n, _ := f.ReadAt(head[:], 0); n < len(head) || string(head[:]) != fileMagic {
		return seqPart(f, name)
	}
	var fr *ipc.FileReader
	err = recovered(func() (err error) {
		fr, err = ipc.NewFileReader(f, ipc.WithEnsureNativeEndian(true))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: not a complete Arrow IPC file (truncated, or its footer is damaged): %w", name, err)
	}
	return &part{name: name, file: fr}, nil
}

// seqPart reads a stream, or an IPC file's stream part, in order.
func seqPart(rd io.Reader, name string) (*part, error) {
	br := bufio.NewReaderSize(rd, 64<<10)
	head, err := br.Peek(8)
	if len(head) == 0 {
		if err == io.EOF {
			return nil, fmt.Errorf("%s: empty input, expected an Arrow IPC stream or file", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &part{name: name}
	switch {
	case bytes.HasPrefix(head, []byte(fileMagic)):
		// An IPC file is the magic padded to 8 bytes, a stream, and the
		// footer: read in order, only the footer's random access is lost.
		if len(head) < 8 {
			return nil, fmt.Errorf("%s: %w", name, ErrTruncated)
		}
		br.Discard(8)
		p.footer = br
	case len(head) < 8 || binary.LittleEndian.Uint32(head) != 0xFFFFFFFF:
		return nil, fmt.Errorf("%s: not an Arrow IPC stream or file (starts with %q)", name, head)
	}
	mr := &eosMessageReader{br: br, inner: ipc.NewMessageReader(br, ipc.WithMetadataSizeLimit(metadataSizeLimit))}
	p.seq, err = ipc.NewReaderFromMessageReader(mr, ipc.WithEnsureNativeEndian(true))
	if err != nil {
		if p.footer != nil && mr.first != 0 && mr.first != ipc.MessageSchema {
			// The format allows this; apache-arrow JS writes its files so.
			return nil, fmt.Errorf("%s: this IPC file keeps its schema only in the footer at its end, so it cannot be read in order from a pipe; pass it as a file (--in FILE)", name)
		}
		return nil, fmt.Errorf("%s: reading schema: %w", name, err)
	}
	return p, nil
}

// next is the part's next batch in order (retained), nil at its end.
func (p *part) next() (arrow.RecordBatch, error) {
	if p.seq.Next() {
		rec := p.seq.RecordBatch()
		rec.Retain()
		return rec, nil
	}
	if err := p.seq.Err(); err != nil {
		return nil, err
	}
	if p.footer != nil {
		return nil, checkFooter(p.footer)
	}
	return nil, nil
}

// checkFooter checks that what follows an IPC file's end-of-stream marker
// is a footer: its bytes, their size (int32) and the magic.
func checkFooter(br *bufio.Reader) error {
	rest, err := io.ReadAll(io.LimitReader(br, metadataSizeLimit))
	if err != nil {
		return fmt.Errorf("reading the IPC file's footer: %w", err)
	}
	n := len(rest)
	tail := len(fileMagic) + 4
	if n <= tail || string(rest[n-len(fileMagic):]) != fileMagic {
		return errors.New("the IPC file ends without its footer (truncated, or the stage that wrote it failed)")
	}
	if size := int64(int32(binary.LittleEndian.Uint32(rest[n-tail:]))); size <= 0 || size > int64(n-tail) {
		return fmt.Errorf("the IPC file's footer size %d does not fit the %d bytes after its end-of-stream marker", size, n-tail)
	}
	return nil
}

func (p *part) close() error {
	if p.file != nil {
		p.file.Close()
		p.file = nil
	}
	if p.seq != nil {
		p.seq.Release()
		p.seq = nil
	}
	if p.closer != nil {
		err := p.closer.Close()
		p.closer = nil
		return err
	}
	return nil
}

// recovered runs fn, turning a panic (arrow-go's flatbuffer accessors index
// damaged metadata unchecked) into an error.
func recovered(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("damaged IPC metadata: %v", v)
		}
	}()
	return fn()
}

// Name is the input's name as used in messages.
func (r *Reader) Name() string { return r.name }

// Schema is the stream's schema, with its metadata.
func (r *Reader) Schema() *arrow.Schema { return r.schema }

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
// input or on error; check Err.
func (r *Reader) Next() bool {
	if r.batch != nil {
		r.batch.Release()
		r.batch = nil
	}
	if r.err != nil {
		return false
	}
	rec, err := r.read()
	if err != nil {
		r.err = fmt.Errorf("%s: batch %d (after row %d): %w", r.parts[r.cur].name, r.index+1, r.rows, err)
		return false
	}
	if rec == nil {
		return false
	}
	r.batch = rec
	r.index++
	r.first = r.rows
	r.rows += rec.NumRows()
	return true
}

// read returns the next batch (retained), nil at the end.
func (r *Reader) read() (arrow.RecordBatch, error) {
	if r.random {
		if r.pos >= r.NumBatches() {
			return nil, nil
		}
		r.cur, _ = r.locate(r.pos)
		r.pos++
		return r.batchAt(r.pos - 1)
	}
	for ; r.cur < len(r.parts); r.cur++ {
		if rec, err := r.parts[r.cur].next(); rec != nil || err != nil {
			return rec, err
		}
	}
	r.cur = len(r.parts) - 1 // messages name the last part
	return nil, nil
}

// NumBatches is the number of record batches when the input is read through
// IPC file footers (BatchAt reads any of them), -1 when it can only be read
// in order (a stream, or a pipe).
func (r *Reader) NumBatches() int {
	if !r.random {
		return -1
	}
	n := 0
	for _, p := range r.parts {
		n += p.file.NumRecords()
	}
	return n
}

// BatchAt reads record batch i (0-based) of a random-access input; the
// caller Releases it. It does not move Next. Safe for concurrent use.
func (r *Reader) BatchAt(i int) (arrow.RecordBatch, error) {
	if !r.random {
		return nil, fmt.Errorf("%s: cannot read batch %d at random: the input is a stream or a pipe, not an IPC file (write it with --out FILE.arrow)", r.name, i+1)
	}
	if i < 0 || i >= r.NumBatches() {
		return nil, fmt.Errorf("%s: batch %d out of range (the input has %d)", r.name, i+1, r.NumBatches())
	}
	rec, err := r.batchAt(i)
	if err != nil {
		return nil, fmt.Errorf("%s: batch %d: %w", r.partOf(i).name, i+1, err)
	}
	return rec, nil
}

// partOf is the part holding batch i of a random-access input.
func (r *Reader) partOf(i int) *part {
	p, _ := r.locate(i)
	return r.parts[p]
}

// locate maps batch i of a random-access input to its part and the batch's
// index there.
func (r *Reader) locate(i int) (p, local int) {
	for p = range r.parts {
		n := r.parts[p].file.NumRecords()
		if i < n {
			return p, i
		}
		i -= n
	}
	return len(r.parts) - 1, i
}

func (r *Reader) batchAt(i int) (rec arrow.RecordBatch, err error) {
	p, local := r.locate(i)
	err = recovered(func() (err error) {
		rec, err = r.parts[p].file.RecordBatchAt(local)
		return err
	})
	return rec, err
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

// Close releases the reader and closes the files it opened.
func (r *Reader) Close() error {
	if r.batch != nil {
		r.batch.Release()
		r.batch = nil
	}
	var first error
	for _, p := range r.parts {
		if err := p.close(); err != nil && first == nil {
			first = fmt.Errorf("%s: %w", p.name, err)
		}
	}
	return first
}

// eosMessageReader tells the end-of-stream marker apart from the input simply
// ending: arrow-go treats both as a normal end, clipline treats the latter as
// truncation.
type eosMessageReader struct {
	br    *bufio.Reader
	inner ipc.MessageReader
	first ipc.MessageType // of the first message read
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
	msg, err := m.inner.Message() // a partial prefix fails there with ErrUnexpectedEOF
	if err == nil && m.first == 0 {
		m.first = msg.Type()
	}
	return msg, err
}

func (m *eosMessageReader) Retain()  { m.inner.Retain() }
func (m *eosMessageReader) Release() { m.inner.Release() }
