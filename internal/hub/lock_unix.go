//go:build unix

package hub

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lock takes an exclusive lock on the file at path (created if needed),
// calling waiting first when another process holds it. unlock removes the
// file, so a cache holds no lock files between downloads.
func lock(path string, waiting func()) (unlock func(), err error) {
	for tries := 0; ; tries++ {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
		if os.IsNotExist(err) && tries < 10 {
			// Another process removed the empty folder after its download.
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return nil, fmt.Errorf("lock: %w", err)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("lock: %w", err)
		}
		fd := int(f.Fd())
		if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); errors.Is(err, syscall.EWOULDBLOCK) {
			waiting()
			err = syscall.Flock(fd, syscall.LOCK_EX)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		// The holder removes the file when done: a lock on a removed file
		// excludes nobody, so take the lock again on the file now there.
		held, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return func() {
				os.Remove(path)
				f.Close()
			}, nil
		}
		f.Close()
	}
}
