package shard

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/clipline/clipline/internal/stream"
)

// Output is where a stage writes given its --out: out itself unsharded, or
// out/part-KKKKK-of-NNNNN.arrow, creating the directory out, which --shard
// requires (not stdout: the tasks of an array write side by side).
func (s Spec) Output(out string) (string, error) {
	if !s.Sharded() {
		return out, nil
	}
	if out == "" || out == "-" {
		return "", fmt.Errorf("--shard %s writes DIR/%s: give --out DIR", s, stream.PartName(s.K, s.N))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", fmt.Errorf("--shard %s: --out %s must be a directory: %w", s, out, err)
	}
	return filepath.Join(out, stream.PartName(s.K, s.N)), nil
}

// Opener opens a stage's input: stream.Open, or the stage's own (embed maps
// IPC files).
type Opener func(path string) (*stream.Reader, error)

// Open opens a stage's --in for part s with open. Unsharded, that is the
// input as it is. Sharded, it is the part K of N in the directory in when it holds one
// (the same task's previous step wrote it), else the K-th of N contiguous
// ranges of the record batches of in (a file, or a directory of parts read
// as one), which needs random access: not a pipe.
func (s Spec) Open(in string, open Opener) (*stream.Reader, error) {
	if !s.Sharded() {
		return open(in)
	}
	if st, err := os.Stat(in); err == nil && st.IsDir() {
		own := filepath.Join(in, stream.PartName(s.K, s.N))
		if _, err := os.Stat(own); err == nil {
			return open(own)
		}
	}
	r, err := open(in)
	if err != nil {
		return nil, err
	}
	if err := r.Shard(s.K, s.N); err != nil {
		r.Close()
		return nil, fmt.Errorf("--shard %s: %w", s, err)
	}
	return r, nil
}

// Open resolves the flags and opens a transform stage's input for its part
// with open (Spec.Open), returning it and the path to write (Spec.Output).
func (f Flags) Open(in, out string, open Opener) (*stream.Reader, string, error) {
	s, err := f.Spec()
	if err != nil {
		return nil, "", err
	}
	r, err := s.Open(in, open)
	if err != nil {
		return nil, "", err
	}
	if out, err = s.Output(out); err != nil {
		r.Close()
		return nil, "", err
	}
	return r, out, nil
}
