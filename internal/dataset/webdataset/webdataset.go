// Package webdataset reads webdataset shards as img2dataset writes them:
// tar files (plain or gzip-compressed) whose members are grouped into
// samples by key, the member path up to the first dot of its base name, as
// the webdataset library and open_clip group them:
//
//	000000012.jpg   the image (.jpg, .jpeg, .png or .webp)
//	000000012.txt   its caption
//	000000012.json  optional metadata: "key" (the image id), "url", "caption"
//
// Members of one sample are adjacent in the tar; members of other types
// (.cls, .npy, ...) are ignored, as are non-regular entries, names with no
// dot after their first character and webdataset's __meta__ members.
//
// A sample is bad when it has no image, no caption, two images, a repeated
// member, an empty or non-UTF-8 caption, metadata that is not a JSON object,
// or an image member whose first bytes are no format decode reads;
// Scan fails naming the shard and member, or with Options.SkipBad skips and
// counts it. A damaged tar (a truncated download) always fails: nothing
// after the damage can be read.
package webdataset

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/clipline/clipline/internal/dataset"
	"github.com/clipline/clipline/internal/imageproc"
)

// Sample is one image of a shard and what came with it.
type Sample struct {
	Index   int      // position among the scan's samples, bad ones included
	Shard   string   // the tar file
	Key     string   // member path up to the first dot of the base name
	Members []string // member names, in tar order
	ID      string   // the metadata's "key", else Key
	Caption string   // KEY.txt (trimmed), else the metadata's "caption"
	URL     string   // the metadata's "url" ("" when absent)
	Image   []byte   // the encoded image; nil when scanning without images
	Ext     string   // the image member's suffix: jpg, jpeg, png or webp
}

// Options control Scan.
type Options struct {
	// Images reads the image members' bytes into Sample.Image; without it
	// they are only checked by their first bytes (and skipped by seeking in a
	// plain tar), which makes a counting pass cheap.
	Images bool
	// SkipBad skips bad samples (counted in Stats) instead of failing.
	SkipBad bool
	// Log receives one line per skipped sample (nil: none).
	Log io.Writer
}

// Stats counts what Scan saw.
type Stats struct {
	Shards  int // tar files read
	Samples int // keys seen, bad ones included
	Bad     int // samples skipped with SkipBad
}

// Shards expands args into the tar files to read, in order: a file is
// itself, a directory its *.tar, *.tar.gz and *.tgz files (not recursive)
// sorted by name, so img2dataset's output folder is one argument.
func Shards(args []string) ([]string, error) {
	return dataset.Inputs("webdataset", ".tar, .tar.gz or .tgz", args, func(n string) bool {
		return strings.HasSuffix(n, ".tar") || strings.HasSuffix(n, ".tar.gz") || strings.HasSuffix(n, ".tgz")
	})
}

// Scan calls fn with every good sample of the shards, in order. fn may keep
// the Sample; its Image is not reused.
func Scan(shards []string, opts Options, fn func(*Sample) error) (Stats, error) {
	var st Stats
	for _, sh := range shards {
		if err := scanShard(sh, opts, &st, fn); err != nil {
			return st, err
		}
		st.Shards++
	}
	return st, nil
}

// badError is a bad sample: skippable with SkipBad.
type badError struct{ msg string }

func (e *badError) Error() string { return e.msg }

func bad(format string, args ...any) error { return &badError{fmt.Sprintf(format, args...)} }

// group is the sample being collected from adjacent members.
type group struct {
	key     string
	members []string
	exts    map[string]bool
	images  []string // image member names
	image   []byte
	ext     string
	txt     *string
	meta    []byte
	err     error // the first bad thing found
}

func scanShard(shard string, opts Options, st *Stats, fn func(*Sample) error) error {
	f, err := os.Open(shard)
	if err != nil {
		return fmt.Errorf("webdataset: %w", err)
	}
	defer f.Close()
	var r io.Reader = f // an *os.File lets tar seek over the members it skips
	br := bufio.NewReader(f)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("webdataset %s: gzip: %w", shard, err)
		}
		defer zr.Close()
		r = zr
	} else if _, err := f.Seek(0, io.SeekStart); err != nil { // undo the peek
		return fmt.Errorf("webdataset %s: %w", shard, err)
	}
	tr := tar.NewReader(r)
	var g *group
	seen := map[string]string{} // key -> first member, for keys split apart
	flush := func() error {
		if g == nil {
			return nil
		}
		cur := g
		g = nil
		st.Samples++
		s, err := cur.sample(shard, st.Samples-1)
		if err != nil {
			msg := fmt.Sprintf("webdataset %s: sample %s (%s): %v", shard, cur.key, strings.Join(cur.members, ", "), err)
			var b *badError
			if !errors.As(err, &b) || !opts.SkipBad {
				if errors.As(err, &b) {
					msg += " (use --skip-bad to skip such samples)"
				}
				return errors.New(msg)
			}
			st.Bad++
			if opts.Log != nil {
				fmt.Fprintf(opts.Log, "%s: skipped\n", msg)
			}
			return nil
		}
		return fn(s)
	}
	last := "" // the last member read, for errors in the tar itself
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			where := "at the first member"
			if last != "" {
				where = "after member " + last
			}
			return fmt.Errorf("webdataset %s: %s: reading the tar: %w (a damaged or truncated shard)", shard, where, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		last = hdr.Name
		key, ext, ok := splitName(hdr.Name)
		if !ok {
			continue
		}
		if g == nil || g.key != key {
			if err := flush(); err != nil {
				return err
			}
			if first, dup := seen[key]; dup {
				return fmt.Errorf("webdataset %s: member %s: key %s appears again after other keys (first member %s); a sample's members must be adjacent", shard, hdr.Name, key, first)
			}
			seen[key] = hdr.Name
			g = &group{key: key, exts: map[string]bool{}}
		}
		if err := g.add(tr, hdr, ext, opts.Images); err != nil {
			return fmt.Errorf("webdataset %s: member %s: %w", shard, hdr.Name, err)
		}
	}
	return flush()
}

// splitName splits a member name as webdataset's base_plus_ext does: the
// key is the directory and the base name up to its first dot, the suffix
// (lower-cased) the rest. ok is false for names webdataset ignores.
func splitName(name string) (key, ext string, ok bool) {
	dir, base := path.Split(name)
	if strings.HasPrefix(base, "__") && strings.HasSuffix(base, "__") {
		return "", "", false
	}
	i := strings.IndexByte(base, '.')
	if i <= 0 || i == len(base)-1 {
		return "", "", false
	}
	return dir + base[:i], strings.ToLower(base[i+1:]), true
}

// sniff is how many leading bytes identify an image format.
const sniff = 12

// maxText bounds the captions and metadata read into memory.
const maxText = 1 << 20

// add reads member hdr of the group's sample from tr. Problems with the
// sample are recorded in g.err; the error returned is a read failure.
func (g *group) add(tr *tar.Reader, hdr *tar.Header, ext string, images bool) error {
	g.members = append(g.members, path.Base(hdr.Name))
	if g.exts[ext] {
		g.setErr(bad("member %s repeated", path.Base(hdr.Name)))
		return nil
	}
	g.exts[ext] = true
	switch ext {
	case "jpg", "jpeg", "png", "webp":
		g.images = append(g.images, path.Base(hdr.Name))
		if len(g.images) > 1 {
			g.setErr(bad("two images (%s)", strings.Join(g.images, " and ")))
			return nil
		}
		g.ext = ext
		n := min(sniff, hdr.Size)
		if images {
			n = hdr.Size
		}
		b, err := readN(tr, n)
		if err != nil {
			return err
		}
		if imageproc.Format(b) == "" {
			g.setErr(bad("%s is not an image file (it starts with %q): %v", path.Base(hdr.Name), b[:min(len(b), sniff)], imageproc.ErrUnknownFormat))
			return nil
		}
		if images {
			g.image = b
		}
	case "txt", "json":
		if hdr.Size > maxText {
			g.setErr(bad("%s is %d bytes, more than a caption or metadata can be (%d)", path.Base(hdr.Name), hdr.Size, maxText))
			return nil
		}
		b, err := readN(tr, hdr.Size)
		if err != nil {
			return err
		}
		if ext == "json" {
			g.meta = b
		} else {
			s := string(b)
			g.txt = &s
		}
	}
	return nil
}

func (g *group) setErr(err error) {
	if g.err == nil {
		g.err = err
	}
}

// readN reads the next n bytes of the current member (at most its size):
// a short read is a truncated shard.
func readN(r io.Reader, n int64) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading its data: %w (a damaged or truncated shard)", err)
	}
	return b, nil
}

// meta is the part of img2dataset's KEY.json that clipline keeps.
type meta struct {
	Key     any `json:"key"`
	URL     any `json:"url"`
	Caption any `json:"caption"`
}

// sample turns the group into a Sample, or says why it is bad.
func (g *group) sample(shard string, index int) (*Sample, error) {
	if g.err != nil {
		return nil, g.err
	}
	s := &Sample{Index: index, Shard: shard, Key: g.key, Members: g.members, ID: g.key, Image: g.image, Ext: g.ext}
	var m meta
	if g.meta != nil {
		d := json.NewDecoder(bytes.NewReader(g.meta))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			return nil, bad("%s.json is not a JSON object: %v", path.Base(g.key), err)
		}
		if k, ok := str(m.Key); ok && k != "" {
			s.ID = k
		}
		s.URL, _ = str(m.URL)
	}
	if len(g.images) == 0 {
		return nil, bad("no image member (.jpg, .jpeg, .png or .webp)")
	}
	switch c, ok := str(m.Caption); {
	case g.txt != nil:
		s.Caption = *g.txt
	case ok:
		s.Caption = c
	default:
		return nil, bad("no caption (no .txt member and no \"caption\" in .json)")
	}
	s.Caption = strings.TrimSpace(s.Caption)
	if s.Caption == "" {
		return nil, bad("empty caption")
	}
	if !utf8.ValidString(s.Caption) {
		return nil, bad("caption is not valid UTF-8")
	}
	s.Members = slices.Clip(s.Members)
	return s, nil
}

// str reads a JSON string; a number (img2dataset's keys are strings, other
// writers' may not be) is kept as the JSON spelled it.
func str(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	}
	return "", false
}
