//go:build !unix

package mmapfile

import "os"

// Map reads path whole where there is no mmap.
func Map(path string) (data []byte, unmap func() error, err error) {
	data, err = os.ReadFile(path)
	return data, func() error { return nil }, err
}
