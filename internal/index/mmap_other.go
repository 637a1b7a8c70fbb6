//go:build !unix

package index

import "os"

// mapFile reads path whole where there is no mmap.
func mapFile(path string) (data []byte, unmap func() error, err error) {
	data, err = os.ReadFile(path)
	return data, func() error { return nil }, err
}
