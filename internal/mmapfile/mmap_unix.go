//go:build unix

// Package mmapfile maps a file read-only into memory (the search index's
// vectors, stream.OpenMapped's IPC files), or reads it whole where there is
// no mmap.
package mmapfile

import (
	"os"

	"golang.org/x/sys/unix"
)

// Map maps path read-only: the page cache's copy, shared by every process
// that maps the file, is the only one. The mapping outlives the descriptor;
// unmap ends it, after which the bytes must not be touched.
func Map(path string) (data []byte, unmap func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close() // the mapping outlives the descriptor
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.Size() == 0 {
		return nil, func() error { return nil }, nil
	}
	data, err = unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, &os.PathError{Op: "mmap", Path: path, Err: err}
	}
	return data, func() error { return unix.Munmap(data) }, nil
}
