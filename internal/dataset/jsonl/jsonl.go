// Package jsonl reads the query/positive JSONL format that retrieval
// fine-tuning tools commonly use, one JSON object a line:
//
//	{"query": "a dog on a beach", "positive": "images/dog.jpg"}
//	{"query": "two dogs", "positive": ["images/a.jpg", "images/b.jpg"], "split": "val"}
//
// "caption" is accepted for "query" and "image" for "positive"; "positive"
// may be one path or a list. Other keys (e.g. "negative") are ignored.
// Rows are grouped by image, in first-seen order, one row per image with
// its captions in first-seen order; a query listed under several images is
// a caption of each (multi-positive). A repeated (query, image) pair adds
// nothing. Lines are parsed with sonic.
//
// Splits: a line's "split" key puts its images in that split; the images of
// lines without one go to Options.DefaultSplit, or, when Options.Draw holds
// out val or test fractions, are split by image with a seeded draw (the one
// prepare synthetic makes), so all captions of an image stay in one split.
// Both at once is allowed: images with a "split" key keep it and the
// fractions are of the other images. An image named with a "split" key on
// one line and without (or with another) on another is an error.
package jsonl

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bytedance/sonic"

	"github.com/clipline/clipline/internal/dataset"
)

// Options control how lines are read.
type Options struct {
	// ImageRoot resolves relative image paths. Empty: the directory of the
	// JSONL file (so a file and its images move together), or the working
	// directory when reading stdin.
	ImageRoot string
	// DefaultSplit is the split of lines without a "split" key; default "train".
	DefaultSplit string
	// Draw, when it holds out val or test images, splits the images of
	// lines without a "split" key: those fractions of them go to val and
	// test, the rest to DefaultSplit. The draw is over the images sorted by
	// id, so line order does not change it.
	Draw dataset.Fractions
	// SkipBad skips malformed lines (counted) instead of failing.
	SkipBad bool
	// SkipMissing drops images that do not exist (counted) instead of failing.
	SkipMissing bool
	// Log receives one line per skipped item (nil: none; counts are in Stats).
	Log io.Writer
}

// Stats counts what was read.
type Stats struct {
	Lines        int // non-blank lines
	Pairs        int // (query, image) pairs read, repeats included
	Repeats      int // (query, image) pairs seen before
	BadLines     int // skipped with SkipBad
	MissingFiles int // distinct image files skipped with SkipMissing
	MissingPairs int // pairs lost with them
	Drawn        int // images split by Options.Draw
	Keyed        int // images with a "split" key
}

// Report writes prepare's summary of what was skipped or merged to w.
func (s Stats) Report(w io.Writer) {
	if s.BadLines > 0 {
		fmt.Fprintf(w, "prepare: skipped %d malformed lines of %d\n", s.BadLines, s.Lines)
	}
	if s.MissingFiles > 0 {
		fmt.Fprintf(w, "prepare: skipped %d missing images (%d pairs)\n", s.MissingFiles, s.MissingPairs)
	}
	if s.Repeats > 0 {
		fmt.Fprintf(w, "prepare: %d repeated (query, image) pairs counted once\n", s.Repeats)
	}
	switch {
	case s.Drawn > 0 && s.Keyed > 0:
		fmt.Fprintf(w, "prepare: %d images kept their \"split\" key; the other %d were split by --val-frac/--test-frac\n", s.Keyed, s.Drawn)
	case s.Drawn == 0 && s.Keyed == 0:
		fmt.Fprintln(w, "prepare: no \"split\" keys: every image is in one split; --val-frac and --test-frac hold some out for validation and testing")
	}
}

// line is one JSONL object. Positive and Image are decoded as any: a string
// or a list of strings.
type line struct {
	Query    *string `json:"query"`
	Caption  *string `json:"caption"`
	Positive any     `json:"positive"`
	Image    any     `json:"image"`
	Split    *string `json:"split"`
}

// image is a row being collected.
type image struct {
	row      dataset.Row
	line     int             // first line naming it
	keyed    bool            // its split came from a "split" key
	captions map[string]bool // for repeat detection
}

// ReadFile reads path ("-" for stdin).
func ReadFile(path string, opts Options) ([]dataset.Row, Stats, error) {
	if path == "-" || path == "" {
		if opts.ImageRoot == "" {
			opts.ImageRoot = "."
		}
		return Read(os.Stdin, "stdin", opts)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, Stats{}, fmt.Errorf("jsonl: %w", err)
	}
	defer f.Close()
	if opts.ImageRoot == "" {
		opts.ImageRoot = filepath.Dir(path)
	}
	return Read(f, path, opts)
}

// Read parses r; name is used in messages ("FILE:LINE: ...").
func Read(r io.Reader, name string, opts Options) ([]dataset.Row, Stats, error) {
	var st Stats
	if opts.DefaultSplit == "" {
		opts.DefaultSplit = dataset.Train
	}
	if err := opts.Draw.Check(); err != nil {
		return nil, st, err
	}
	// Images of lines without a "split" key get unkeyed until the draw.
	unkeyed := opts.DefaultSplit
	if !opts.Draw.Zero() {
		unkeyed = ""
	}
	root := opts.ImageRoot
	if root == "" {
		root = "."
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, st, err
	}
	var order []*image
	byPath := map[string]*image{} // by absolute path
	missing := map[string]bool{}  // absolute paths known not to exist

	br := bufio.NewReaderSize(r, 1<<20)
	for lineNo := 1; ; lineNo++ {
		raw, readErr := br.ReadBytes('\n')
		if readErr != nil && readErr != io.EOF {
			return nil, st, fmt.Errorf("%s:%d: read: %w", name, lineNo, readErr)
		}
		if lineNo == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")) // UTF-8 BOM
		}
		text := bytes.TrimSpace(raw)
		if len(text) > 0 {
			st.Lines++
			q, paths, split, err := parseLine(text)
			if err != nil {
				if !opts.SkipBad {
					return nil, st, fmt.Errorf("%s:%d: %w (use --skip-bad to skip such lines)", name, lineNo, err)
				}
				st.BadLines++
				logf(opts.Log, "%s:%d: skipped: %v", name, lineNo, err)
			} else {
				keyed := split != ""
				if !keyed {
					split = unkeyed
				}
				for _, p := range paths {
					st.Pairs++
					abs := p
					if !filepath.IsAbs(abs) {
						abs = filepath.Join(root, p)
					}
					abs = filepath.Clean(abs)
					if missing[abs] {
						st.MissingPairs++
						continue
					}
					im := byPath[abs]
					if im == nil {
						if err := checkFile(abs); err != nil {
							if !opts.SkipMissing {
								return nil, st, fmt.Errorf("%s:%d: image %q: %w (use --skip-missing to drop missing images)", name, lineNo, p, err)
							}
							missing[abs] = true
							st.MissingFiles++
							st.MissingPairs++
							logf(opts.Log, "%s:%d: skipped missing image %s", name, lineNo, abs)
							continue
						}
						im = &image{
							row:      dataset.Row{ImageID: filepath.ToSlash(filepath.Clean(p)), Split: split, ImagePath: abs},
							line:     lineNo,
							keyed:    keyed,
							captions: map[string]bool{},
						}
						byPath[abs] = im
						order = append(order, im)
					} else if im.row.Split != split {
						return nil, st, fmt.Errorf("%s:%d: image %q is in split %s here but in %s on line %d; an image belongs to one split",
							name, lineNo, p, splitName(split), splitName(im.row.Split), im.line)
					}
					if im.captions[q] {
						st.Repeats++
						continue
					}
					im.captions[q] = true
					im.row.Captions = append(im.row.Captions, q)
				}
			}
		}
		if readErr == io.EOF {
			break
		}
	}
	if st.Lines == 0 {
		return nil, st, fmt.Errorf("%s: no JSON lines (empty input)", name)
	}
	if len(order) == 0 {
		return nil, st, fmt.Errorf("%s: no usable (query, image) pairs in %d lines (%d malformed, %d images missing)", name, st.Lines, st.BadLines, st.MissingFiles)
	}
	// Two spellings of one path ("a/x.jpg" and "./a/x.jpg") are one image;
	// ids come from the first spelling, but must stay unique.
	rows := make([]dataset.Row, len(order))
	ids := map[string]int{}
	for i, im := range order {
		if j, ok := ids[im.row.ImageID]; ok {
			return nil, st, fmt.Errorf("%s:%d: image id %q also names another file (line %d)", name, im.line, im.row.ImageID, order[j].line)
		}
		ids[im.row.ImageID] = i
		rows[i] = im.row
	}
	st.Drawn = draw(rows, opts)
	for _, im := range order {
		if im.keyed {
			st.Keyed++
		}
	}
	return rows, st, nil
}

// draw splits the rows with no split yet by opts.Draw (over their ids in
// sorted order), the train share going to opts.DefaultSplit, and returns
// how many it split.
func draw(rows []dataset.Row, opts Options) int {
	var todo []int
	for i, r := range rows {
		if r.Split == "" {
			todo = append(todo, i)
		}
	}
	sort.Slice(todo, func(a, b int) bool { return rows[todo[a]].ImageID < rows[todo[b]].ImageID })
	for k, s := range opts.Draw.Draw(len(todo)) {
		if s == dataset.Train {
			s = opts.DefaultSplit
		}
		rows[todo[k]].Split = s
	}
	return len(todo)
}

// splitName quotes a split for messages; "" is a line without a key.
func splitName(s string) string {
	if s == "" {
		return `(none: no "split" key)`
	}
	return strconv.Quote(s)
}

// parseLine extracts the query, the image paths and the split of one line.
func parseLine(text []byte) (query string, paths []string, split string, err error) {
	var l line
	if err := sonic.Unmarshal(text, &l); err != nil {
		return "", nil, "", fmt.Errorf("malformed JSON: %s", shortErr(err))
	}
	switch {
	case l.Query != nil && l.Caption != nil && *l.Query != *l.Caption:
		return "", nil, "", errors.New(`both "query" and "caption" given, with different texts`)
	case l.Query != nil:
		query = *l.Query
	case l.Caption != nil:
		query = *l.Caption
	default:
		return "", nil, "", errors.New(`no "query" (or "caption") text`)
	}
	query = strings.TrimSpace(query)
	if query == "" {
		return "", nil, "", errors.New(`empty "query" text`)
	}
	if !utf8.ValidString(query) {
		return "", nil, "", errors.New(`"query" text is not valid UTF-8`)
	}
	pos, key := l.Positive, "positive"
	if pos == nil {
		pos, key = l.Image, "image"
	} else if l.Image != nil {
		return "", nil, "", errors.New(`both "positive" and "image" given`)
	}
	switch v := pos.(type) {
	case nil:
		return "", nil, "", errors.New(`no "positive" (or "image") path`)
	case string:
		paths = []string{v}
	case []any:
		if len(v) == 0 {
			return "", nil, "", fmt.Errorf("%q is an empty list", key)
		}
		for i, x := range v {
			s, ok := x.(string)
			if !ok {
				return "", nil, "", fmt.Errorf("%q[%d] is %s, want a path string", key, i, typeName(x))
			}
			paths = append(paths, s)
		}
	default:
		return "", nil, "", fmt.Errorf("%q is %s, want a path or a list of paths", key, typeName(v))
	}
	for _, p := range paths {
		if strings.TrimSpace(p) == "" {
			return "", nil, "", fmt.Errorf("%q holds an empty path", key)
		}
	}
	if l.Split != nil {
		split = strings.TrimSpace(*l.Split)
		if split == "" {
			return "", nil, "", errors.New(`empty "split"`)
		}
	}
	return query, paths, split, nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, int64, int:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// shortErr keeps sonic's syntax errors to one line.
func shortErr(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func checkFile(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		if os.IsNotExist(err) {
			return fmt.Errorf("not found at %s", p)
		}
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", p)
	}
	return nil
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}
