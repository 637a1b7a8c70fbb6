package stream

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

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

// Reader iterates the record batches of one clipline input: a stream, an
// IPC file (through its footer when it is a regular file, so batches can
// also be read at random: NumBatches, BatchAt, Shard), or a directory of
// parts read in order as one input.
type Reader struct {
	name   string
	parts  []*part
	cur    int  // the part being read; len(parts) once all are read
	random bool // every part is an IPC file read through its footer
	pos    int  // next batch to read, when random
	hi     int  // end of the batches Next reads, when random (Shard)
	batch  arrow.RecordBatch
	index  int   // 1-based number of the current batch
	first  int64 // row number of the current batch's first row
	rows   int64 // rows read so far
	err    error
}

// part is one file of a Reader's input.
type part struct {
	name   string
	path   string // to reopen a stream part of a directory when its turn comes
	schema *arrow.Schema
	closer io.Closer // what Close closes; nil for stdin or a caller's reader
	// file is an IPC file read through its footer: ra holds its size bytes
	// (the file, or the map of OpenMapped); next is the batch Next reads
	// when the Reader reads in order.
	file   *ipc.FileReader
	ra     io.ReaderAt
	size   int64
	next   int
	mapped []byte      // the map, when OpenMapped
	seq    *ipc.Reader // else the part is read in order
	// footer is set when seq reads an IPC file sequentially (a pipe): the
	// rest after the end-of-stream marker must be the file's footer.
	footer *bufio.Reader

	infoOnce sync.Once // infos, infoErr: readBatchInfo of a file part
	infos    []batchInfo
	infoErr  error
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
// (stages say what they expect there earlier, in cli.Parse). A directory is
// read as its parts, PartName(0, N) to PartName(N-1, N), in order, as one
// input (see openDir). The schema is read immediately, so empty and
// non-Arrow inputs fail here.
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
	return openAt(path, openPath)
}

// openAt reads the file at path, or the directory of parts, each file
// opened by open.
func openAt(path string, open func(path string) (*part, error)) (*Reader, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return openDir(path, open)
	}
	p, err := open(path)
	if err != nil {
		return nil, err
	}
	return newReader(path, []*part{p}), nil
}

// openPath opens the file at path as a part, named by its path.
func openPath(path string) (*part, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	p, err := openPart(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	p.closer, p.path = f, path
	return p, nil
}

// openDir reads a directory of parts (partPaths) as one input, each part
// opened by open. Every part's schema must equal the first's, metadata
// included but for the provenance (each part names its own --shard); the
// Reader's schema is the first part's. A stream part is closed again once
// its schema is checked and reopened when Next reaches it, so a thousand
// parts hold no read buffers.
func openDir(dir string, open func(path string) (*part, error)) (*Reader, error) {
	paths, err := partPaths(dir)
	if err != nil {
		return nil, err
	}
	parts := make([]*part, 0, len(paths))
	fail := func(err error) (*Reader, error) {
		for _, p := range parts {
			p.close()
		}
		return nil, err
	}
	for _, path := range paths {
		p, err := open(path)
		if err != nil {
			return fail(err)
		}
		parts = append(parts, p)
		if err := sameSchema(parts[0].schema, p.schema); err != nil {
			return fail(fmt.Errorf("%s: schema differs from %s: %w", path, parts[0].name, err))
		}
		if p.file == nil {
			p.close()
		}
	}
	return newReader(dir, parts), nil
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
	r.hi = r.NumBatches()
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
	return filePart(name, f, fi.Size(), func() (*ipc.FileReader, error) {
		return ipc.NewFileReader(f, ipc.WithEnsureNativeEndian(true))
	})
}

// checkHead compares the footer's schema with the one at the file's start
// (when the writer put one there, as arrow-go and pyarrow do): a footer of
// another file, pasted on or left by a bad rewrite, shows there.
func (p *part) checkHead() error {
	head, err := seqPart(io.NewSectionReader(p.ra, 0, p.size), p.name)
	if err != nil {
		return nil // no schema message first: the footer's is the only one
	}
	defer head.close()
	if !head.schema.Equal(p.schema) || !head.schema.Metadata().Equal(p.schema.Metadata()) {
		return fmt.Errorf("%s: the IPC file's footer does not match it: the footer's schema %v, the file's %v", p.name, p.schema, head.schema)
	}
	return nil
}

// filePart is the part of an IPC file that open reads through its footer;
// ra holds the file's size bytes.
func filePart(name string, ra io.ReaderAt, size int64, open func() (*ipc.FileReader, error)) (*part, error) {
	var fr *ipc.FileReader
	err := recovered(func() (err error) {
		fr, err = open()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: not a complete Arrow IPC file (truncated, or its footer is damaged): %w", name, err)
	}
	p := &part{name: name, schema: fr.Schema(), file: fr, ra: ra, size: size}
	if err := p.checkHead(); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
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
	p.schema = p.seq.Schema()
	return p, nil
}

// read is the part's next batch in order (retained), nil at its end.
func (p *part) read() (rec arrow.RecordBatch, err error) {
	if p.file == nil && p.seq == nil { // a directory's stream part, closed since its check
		q, err := openPath(p.path)
		if err != nil {
			return nil, err
		}
		p.closer, p.file, p.ra, p.size, p.seq, p.footer = q.closer, q.file, q.ra, q.size, q.seq, q.footer
	}
	if p.file != nil {
		if p.next >= p.file.NumRecords() {
			return nil, nil
		}
		p.next++
		return p.batchAt(p.next - 1)
	}
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

// batchAt reads the part's batch i (retained) through its footer.
func (p *part) batchAt(i int) (rec arrow.RecordBatch, err error) {
	err = recovered(func() (err error) {
		rec, err = p.file.RecordBatchAt(i)
		return err
	})
	return rec, err
}

// batchInfo is readBatchInfo of a file part, read once.
func (p *part) batchInfo() ([]batchInfo, error) {
	p.infoOnce.Do(func() {
		p.infos, p.infoErr = readBatchInfo(p.ra, p.size)
		if p.infoErr == nil && len(p.infos) != p.file.NumRecords() {
			p.infoErr = fmt.Errorf("footer read as %d record batches, not %d", len(p.infos), p.file.NumRecords())
		}
		if p.infoErr != nil {
			p.infoErr = fmt.Errorf("%s: reading the record batches' metadata: %w", p.name, p.infoErr)
		}
	})
	return p.infos, p.infoErr
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
func (r *Reader) Schema() *arrow.Schema { return r.parts[0].schema }

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
		r.err = fmt.Errorf("%s: batch %d (after row %d): %w", r.parts[min(r.cur, len(r.parts)-1)].name, r.index+1, r.rows, err)
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
		if r.pos >= r.hi {
			return nil, nil
		}
		p, local := r.locate(r.pos)
		r.cur = p
		r.pos++
		return r.parts[p].batchAt(local)
	}
	for ; r.cur < len(r.parts); r.cur++ {
		p := r.parts[r.cur]
		if rec, err := p.read(); rec != nil || err != nil {
			return rec, err
		}
		if len(r.parts) > 1 {
			p.close() // a directory's part, done: its buffers go
		}
	}
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
	p, local := r.locate(i)
	rec, err := r.parts[p].batchAt(local)
	if err != nil {
		return nil, fmt.Errorf("%s: batch %d: %w", r.parts[p].name, i+1, err)
	}
	return rec, nil
}

// Shard restricts Next to the k-th (0-based) of n contiguous ranges of the
// input's record batches, batches [k*B/n, (k+1)*B/n) of B; FirstRow,
// RowsRead and BatchIndex keep counting over the whole input, so messages
// name the input's own row numbers. It must come before the first Next and
// needs random access: an IPC file or a directory of them, not a stream or
// a pipe. A range may be empty (n > B).
func (r *Reader) Shard(k, n int) error {
	switch {
	case n < 1 || k < 0 || k >= n:
		return fmt.Errorf("%s: shard %d of %d: want 0 <= K < N", r.name, k, n)
	case !r.random:
		return fmt.Errorf("%s: sharding by record batches needs random access: an IPC file (written with --out FILE.arrow) or a directory of them, not a stream or a pipe", r.name)
	case r.index > 0 || r.err != nil:
		return fmt.Errorf("%s: Shard after Next", r.name)
	}
	b := r.NumBatches()
	lo, hi := k*b/n, (k+1)*b/n
	// The rows before the range, from the batches' metadata alone.
	var rows int64
	for i := 0; i < lo; {
		p, local := r.locate(i)
		infos, err := r.parts[p].batchInfo()
		if err != nil {
			return err
		}
		take := min(lo-i, len(infos)-local)
		for _, in := range infos[local : local+take] {
			rows += in.rows
		}
		i += take
	}
	r.pos, r.hi = lo, hi
	r.index, r.first, r.rows = lo, rows, rows
	return nil
}

// Compressed reports whether any record batch of a random-access input has
// compressed buffers, so a caller that wants buffers aliasing a map
// (OpenMapped) knows to spool the input uncompressed first. Unreadable
// batch metadata counts as compressed (reading the batches then fails with
// the details). An input read only in order reports false: its batches are
// not known ahead.
func (r *Reader) Compressed() bool {
	if !r.random {
		return false
	}
	for _, p := range r.parts {
		infos, err := p.batchInfo()
		if err != nil {
			return true
		}
		for _, in := range infos {
			if in.compressed {
				return true
			}
		}
	}
	return false
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

// Close releases the reader and closes the files it opened (and unmaps
// those OpenMapped mapped).
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
