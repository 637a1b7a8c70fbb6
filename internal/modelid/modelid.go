// Package modelid names a model by its contents: what embed records in a
// stream (clipline.model_hash) and an index bundle's manifest carries, so
// that serve can tell whether the model it loads is the one that made the
// index, whatever path or hub id each was given.
package modelid

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Files are what the hash covers, in this order: the architecture and the
// weights. The tokenizer and preprocessing files are left out: they do not
// change the vectors of an embedded stream's pixels and tokens.
var Files = []string{"config.json", "model.safetensors"}

// Hash identifies the model in dir: "sha256:" and the hex SHA-256 over, for
// each of Files, its name, a NUL byte, its size as 8 bytes big-endian and
// its bytes. The names and sizes frame the contents, so no two different
// pairs of files hash alike by moving bytes from one to the other.
func Hash(dir string) (string, error) {
	h := sha256.New()
	for _, name := range Files {
		if err := add(h, dir, name); err != nil {
			return "", err
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func add(h io.Writer, dir, name string) error {
	path := filepath.Join(dir, name)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("model hash: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("model hash: %w", err)
	}
	var size [8]byte
	binary.BigEndian.PutUint64(size[:], uint64(fi.Size()))
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write(size[:])
	n, err := io.Copy(h, f)
	if err == nil && n != fi.Size() {
		err = fmt.Errorf("changed size while being read (%d bytes, then %d)", fi.Size(), n)
	}
	if err != nil {
		return fmt.Errorf("model hash: %s: %w", path, err)
	}
	return nil
}
