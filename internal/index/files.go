package index

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"unsafe"
)

// littleEndian is whether float32s are laid out in memory as the bundle's
// files hold them, so they are written and mapped as they are.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// floatFile writes little-endian float32s after a header, buffered.
type floatFile struct {
	f *os.File
	w *bufio.Writer
}

func createFloats(path string, header []byte) (*floatFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	ff := &floatFile{f: f, w: bufio.NewWriterSize(f, 1<<20)}
	ff.w.Write(header)
	return ff, nil
}

// write queues data; the first error is kept for close (bufio keeps it).
func (ff *floatFile) write(data []float32) {
	if littleEndian {
		if len(data) > 0 {
			ff.w.Write(unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), 4*len(data)))
		}
		return
	}
	var b [4]byte
	for _, x := range data {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(x))
		ff.w.Write(b[:])
	}
}

// close flushes and closes the file, then writes patches (offset: bytes)
// over what was written, for a header whose values became known last.
func (ff *floatFile) close(patches map[int64][]byte) error {
	if ff.f == nil {
		return nil
	}
	err := ff.w.Flush()
	for off, b := range patches {
		if err == nil {
			_, err = ff.f.WriteAt(b, off)
		}
	}
	if cerr := ff.f.Close(); err == nil {
		err = cerr
	}
	ff.f = nil
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return nil
}

// writeFloats writes header and then data to path.
func writeFloats(path string, header []byte, data []float32) error {
	ff, err := createFloats(path, header)
	if err != nil {
		return err
	}
	ff.write(data)
	return ff.close(nil)
}

// floatsOf views mapped little-endian bytes as float32s (no copy).
func floatsOf(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%d bytes, not a whole number of float32s", len(b))
	}
	if !littleEndian {
		return nil, errors.New("bundles hold little-endian floats; this machine is big-endian")
	}
	if len(b) == 0 {
		return nil, nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4), nil
}

// replace puts the finished bundle tmp at dir. An existing dir (a bundle,
// or empty) is swapped with tmp in one step where the system can, so a
// reader never finds dir missing; tmp then holds the old bundle, for the
// caller to remove.
func replace(tmp, dir string, exists bool) error {
	if !exists {
		return os.Rename(tmp, dir)
	}
	if err := exchange(tmp, dir); err == nil {
		return nil
	}
	// No atomic exchange here: move the old bundle into tmp's place.
	old := tmp + ".old"
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.Rename(old, dir)
		return err
	}
	return os.Rename(old, tmp)
}
