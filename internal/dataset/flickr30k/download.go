package flickr30k

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/clipline/clipline/internal/fetch"
)

// DefaultBaseURL is the Hugging Face mirror of Flickr30k with Karpathy's
// splits (4.4 GB of images in one zip, 13 MB of annotations).
const DefaultBaseURL = "https://huggingface.co/datasets/nlphuji/flickr30k/resolve/main"

// DownloadOptions configure Download.
type DownloadOptions struct {
	BaseURL  string // default DefaultBaseURL; files are BaseURL/CSVFile and BaseURL/ZipFile
	CacheDir string // default fetch.CacheRoot()/datasets/flickr30k
	KeepZip  bool   // keep the zip after extraction (default: delete it, the images are unpacked)
	// Fetch is the base for both downloads (Client, Progress, Retries...).
	Fetch fetch.Options
	// Log receives extraction progress (nil: none).
	Log io.Writer
}

// Source is the local copy to convert: dir, or with download the mirror
// fetched into the cache (see Download). Exactly one must be asked for.
func Source(ctx context.Context, dir string, download bool, opts DownloadOptions) (string, error) {
	switch {
	case download && dir != "":
		return "", errors.New("give either --dir DIR (a local copy) or --download, not both")
	case download:
		return Download(ctx, opts)
	case dir == "":
		return "", errors.New("flickr30k needs --dir DIR (a local copy) or --download")
	}
	return dir, nil
}

// DefaultCacheDir is where Download puts the mirror unless told otherwise.
func DefaultCacheDir() string {
	return filepath.Join(fetch.CacheRoot(), "datasets", "flickr30k")
}

// Download fetches the mirror's annotation CSV and image zip into the cache
// directory (resuming interrupted downloads), unpacks the zip into
// CACHE/images (safely: no entry may leave that folder) and returns the
// cache directory, ready for Convert. Finished steps are skipped on later
// runs: the CSV and CACHE/images only appear once complete.
func Download(ctx context.Context, opts DownloadOptions) (string, error) {
	base := strings.TrimRight(opts.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	dir := opts.CacheDir
	if dir == "" {
		dir = DefaultCacheDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("flickr30k: cache: %w", err)
	}
	fo := opts.Fetch
	fo.Label = CSVFile
	if err := fetch.File(ctx, base+"/"+CSVFile, filepath.Join(dir, CSVFile), fo); err != nil {
		return "", fmt.Errorf("flickr30k: %w", err)
	}
	images := filepath.Join(dir, "images")
	if _, err := os.Stat(images); err == nil {
		return dir, nil
	}
	zipPath := filepath.Join(dir, ZipFile)
	fo.Label = ZipFile
	if err := fetch.File(ctx, base+"/"+ZipFile, zipPath, fo); err != nil {
		return "", fmt.Errorf("flickr30k: %w", err)
	}
	// Unpack next to the destination, then rename: CACHE/images exists only
	// when complete. An interrupted unpack resumes (finished files are kept).
	part := images + ".part"
	if err := Unzip(ctx, zipPath, part, opts.Log); err != nil {
		return "", fmt.Errorf("flickr30k: unpack %s: %w", zipPath, err)
	}
	if err := os.Rename(part, images); err != nil {
		return "", fmt.Errorf("flickr30k: %w", err)
	}
	if !opts.KeepZip {
		if err := os.Remove(zipPath); err != nil {
			return "", fmt.Errorf("flickr30k: %w", err)
		}
	}
	return dir, nil
}

// Unzip extracts zipPath into dest. Every entry must be a local path (no
// absolute paths, no "..", no symlinks): a hostile archive cannot write
// outside dest. macOS resource forks (__MACOSX/, ._*) are skipped. A file
// already present with the entry's size is kept, so a rerun after an
// interruption only extracts what is missing. Files are extracted in
// parallel.
func Unzip(ctx context.Context, zipPath, dest string, log io.Writer) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return err
	}
	defer zr.Close()
	var files []*zip.File
	for _, f := range zr.File {
		name := f.Name
		if strings.HasPrefix(name, "__MACOSX/") || strings.HasPrefix(filepath.Base(name), "._") {
			continue
		}
		local := filepath.FromSlash(strings.TrimSuffix(name, "/"))
		if strings.Contains(name, `\`) || !filepath.IsLocal(local) {
			return fmt.Errorf("entry %q would be written outside %s; refusing the archive", name, dest)
		}
		mode := f.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(filepath.Join(dest, local), 0o755); err != nil {
				return err
			}
		case mode.IsRegular():
			files = append(files, f)
		default:
			return fmt.Errorf("entry %q is a %v, not a regular file; refusing the archive", name, mode.Type())
		}
	}
	if log != nil {
		fmt.Fprintf(log, "unpacking %d files from %s\n", len(files), zipPath)
	}
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	jobs := make(chan *zip.File)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range jobs {
				if err := extract(f, dest); err != nil {
					once.Do(func() { firstErr = err })
					continue
				}
				if n := done.Add(1); log != nil && n%5000 == 0 {
					fmt.Fprintf(log, "unpacked %d/%d\n", n, len(files))
				}
			}
		}()
	}
	for _, f := range files {
		if ctx.Err() != nil {
			break
		}
		jobs <- f
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func extract(f *zip.File, dest string) error {
	p := filepath.Join(dest, filepath.FromSlash(f.Name))
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && uint64(st.Size()) == f.UncompressedSize64 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("entry %s: %w", f.Name, err)
	}
	defer rc.Close()
	tmp := p + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	// archive/zip checks the CRC and the declared size at EOF; the limit
	// stops an entry that lies about its size from filling the disk first.
	n, err := io.Copy(out, io.LimitReader(rc, int64(f.UncompressedSize64)+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && uint64(n) != f.UncompressedSize64 {
		err = fmt.Errorf("size %d, header says %d", n, f.UncompressedSize64)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("entry %s: %w", f.Name, err)
	}
	return os.Rename(tmp, p)
}
