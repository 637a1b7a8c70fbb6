package traindata

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/clipline/clipline/internal/decode"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/train"
)

// Train reads pixels through a memory map (train.Images), so that its own
// memory holds the pair index and tokens, not the images: each input has
// to be an uncompressed Arrow IPC file with a pixels column. An input that
// is not (stdin, a file in the stream format, a compressed file, rows with
// image_path or image_bytes instead of pixels) is first spooled into the
// cache directory as one: copied batch by batch, or written by decode.Run
// (the decode stage's code) when it has no pixels.
//
// A spool of a file is named by the file (absolute path, size, modification
// time) and what was done to it, and is reused while those stay the same:
// a resumed run finds it. stdin is spooled anew every run. In the default
// cache directory (output_dir/cache) train removes its spools when the run
// ends, except when it is interrupted (the checkpoint's --resume will want
// them); an explicit cache_dir belongs to the user and is left as it is.

// DefaultSpoolDir is the cache directory of a run writing to outputDir.
func DefaultSpoolDir(outputDir string) string { return filepath.Join(outputDir, train.CacheDirName) }

// spoolVersion names the spools' layout; a change to what they hold bumps it.
const spoolVersion = "clipline spool 1"

// open maps input path (role names it in spool names: train or val),
// spooling it first when it cannot be mapped as it is. ro has the model's
// geometry and image root for decoding.
func (s *Sources) open(path, role string, ro train.ReadOptions) (*stream.Reader, error) {
	if r, ok, err := mapAsIs(path); err != nil || ok {
		return r, err
	}
	spool, err := s.spool(path, role, ro)
	if err != nil {
		return nil, err
	}
	r, err := stream.OpenMapped(spool)
	if err != nil {
		return nil, fmt.Errorf("%s (spooled from %s): %w", spool, stream.InputName(path), err)
	}
	return r, nil
}

// mapAsIs maps path when it is an Arrow IPC file (or a directory of
// them), uncompressed and with pixels; ok is false (and the reader nil)
// when it is not.
func mapAsIs(path string) (r *stream.Reader, ok bool, err error) {
	r, err = stream.OpenMapped(path)
	if errors.Is(err, stream.ErrNotMappable) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if r.Compressed() || !stream.HasColumn(r.Schema(), stream.ColPixels) {
		r.Close()
		return nil, false, nil
	}
	return r, true, nil
}

// spool writes path as an uncompressed IPC file with pixels into the
// cache directory, or finds the one written before, and returns its path.
func (s *Sources) spool(path, role string, ro train.ReadOptions) (string, error) {
	in, err := stream.Open(path)
	if err != nil {
		return "", err
	}
	defer in.Close()
	// What ReadSplits requires besides pixels, before a long decode.
	if err := in.Require(stream.ColCaptions, stream.ColCaptionTokens); err != nil {
		return "", err
	}
	decoding := !stream.HasColumn(in.Schema(), stream.ColPixels)
	what := "copy"
	if decoding {
		what = fmt.Sprintf("decode %+v image_root %q", ro.Geometry, ro.ImageRoot)
	}
	name := role + "-stdin.arrow"
	if path != "" && path != "-" {
		key, err := spoolKey(path, what)
		if err != nil {
			return "", err
		}
		name = role + "-" + key[:16] + ".arrow"
	}
	out := filepath.Join(s.spoolDir, name)
	s.spools = append(s.spools, out)
	if name != role+"-stdin.arrow" {
		if _, err := os.Stat(out); err == nil {
			fmt.Fprintf(s.Log, "train: %s: reusing %s\n", stream.InputName(path), out)
			return out, nil
		}
	}
	if err := os.MkdirAll(s.spoolDir, 0o755); err != nil {
		return "", fmt.Errorf("cache_dir: %w", err)
	}
	start := time.Now()
	if decoding {
		fmt.Fprintf(s.Log, "train: %s has no pixels; decoding it into %s\n", stream.InputName(path), out)
		err = decode.Run(in, decode.Options{Geometry: ro.Geometry, ImageRoot: ro.ImageRoot, Workers: ro.Workers,
			Args: []string{"train", "spool", stream.InputName(path)}, Out: out, Log: s.Log})
	} else {
		err = copyStream(in, out)
	}
	if err != nil {
		return "", err
	}
	fmt.Fprintf(s.Log, "train: spooled %s to %s in %.1fs\n", stream.InputName(path), out, time.Since(start).Seconds())
	return out, nil
}

// copyStream writes in's batches, uncompressed, to the file out.
func copyStream(in *stream.Reader, out string) error {
	w, err := stream.Create(out, in.Schema(), stream.Options{})
	if err != nil {
		return err
	}
	for in.Next() {
		if err := w.Write(in.Batch()); err != nil {
			w.Abort()
			return err
		}
	}
	if err := in.Err(); err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}

// spoolKey names a file's spool: its absolute path, size and modification
// time (as make judges a file changed) and what is done to it.
func spoolKey(path, what string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%q %d %d\n%s\n", spoolVersion, abs, fi.Size(), fi.ModTime().UnixNano(), what)
	return hex.EncodeToString(h.Sum(nil)), nil
}
