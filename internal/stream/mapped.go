package stream

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/clipline/clipline/internal/mmapfile"
)

// ErrNotMappable is the error (errors.Is) of OpenMapped for an input that
// is not an IPC file on disk: a stream, stdin, a pipe. Callers spool such
// an input to an IPC file first.
var ErrNotMappable = errors.New("not an Arrow IPC file on disk, so it cannot be memory-mapped")

// OpenMapped is Open over a memory map of the IPC file at path (or of each
// part of a directory of them): batches are read from the map, and their
// uncompressed buffers alias it, so they cost no anonymous memory and stay
// valid until Close, even after the batch is released. Compressed buffers
// are decompressed into memory as usual; Compressed tells callers that
// want the aliasing to spool such a file uncompressed. A stream, stdin or
// a pipe is ErrNotMappable.
func OpenMapped(path string) (*Reader, error) {
	if path == "" || path == "-" {
		return nil, fmt.Errorf("stdin: %w", ErrNotMappable)
	}
	return openAt(path, mapPath)
}

// mapPath maps the IPC file at path as a part.
func mapPath(path string) (*part, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w", path, ErrNotMappable)
	}
	if fi.Size() == 0 {
		return nil, fmt.Errorf("%s: empty input, expected an Arrow IPC file", path)
	}
	data, unmap, err := mmapfile.Map(path)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(data, []byte(fileMagic)) {
		unmap()
		return nil, fmt.Errorf("%s: %w (a stream or another format; write it with --out FILE.arrow)", path, ErrNotMappable)
	}
	p, err := filePart(path, bytes.NewReader(data), int64(len(data)), func() (*ipc.FileReader, error) {
		return ipc.NewMappedFileReader(data, ipc.WithEnsureNativeEndian(true))
	})
	if err != nil {
		unmap()
		return nil, err
	}
	p.closer, p.path, p.mapped = closerFunc(unmap), path, data
	return p, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
