// Package atomicfile writes whole files so that a reader, or a later run,
// finds either the previous file or the complete new one, never a torn one.
package atomicfile

import (
	"os"
	"path/filepath"
)

// WriteFile writes data to a temporary file next to path (same directory,
// so the rename stays on one file system), gives it mode perm (CreateTemp
// makes 0600 files, and outputs are shared artefacts) and renames it onto
// path. On error the temporary file is removed and path is left as it was.
//
// It does not fsync: the rename guards against failed and interrupted runs,
// not against power loss, and syncing every checkpoint file would be slow.
//
// A path that is not a regular file (/dev/null, /dev/stdout, a named pipe) is
// written in place: renaming onto it would replace the device with a file.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	if Special(path) {
		return os.WriteFile(path, data, perm)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer Track(tmp)()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Special reports whether path exists and is not a regular file or a
// directory (following links): a device, a named pipe or a socket, which an
// output is written into rather than renamed over.
func Special(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.Mode().IsRegular() && !fi.IsDir()
}
