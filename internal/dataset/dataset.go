// Package dataset holds the in-memory form of what `prepare` emits: one row
// per image with every caption of that image, before it becomes an Arrow
// stream. Source converters (synthetic, jsonl, flickr30k) all produce Rows,
// so the stage wiring and the checks below are shared.
package dataset

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Split names used across clipline. Sources may carry other names (a JSONL
// file can say "dev"); they pass through unchanged.
const (
	Train = "train"
	Val   = "val"
	Test  = "test"
)

// Row is one image and all of its captions.
type Row struct {
	ImageID   string   // stable identifier, independent of where files live
	Split     string   // train, val, test, or a source-defined name
	ImagePath string   // absolute path to the image file (decode reads it as-is); "" for sources without files
	Captions  []string // at least one; a caption may also appear under other images (multi-positive)

	ImageBytes []byte // the encoded image file, for sources that carry images (webdataset, parquet)
	URL        string // where the image was downloaded from, when the source says (img2dataset)
}

// Validate checks the invariants every stage downstream relies on: at least
// one row, unique non-empty image ids, a split, an image (a path or its
// bytes: the same one for every row) and at least one non-empty caption per
// row. The error names the offending row.
func Validate(rows []Row) error {
	if len(rows) == 0 {
		return errNoRows
	}
	c := newChecker(ColumnsOf(rows))
	for _, r := range rows {
		if err := c.check(r); err != nil {
			return err
		}
	}
	return nil
}

var errNoRows = errors.New("no rows: the source yielded no images with captions")

// checker applies Validate's checks row by row, for streamed rows too.
type checker struct {
	cols Columns
	seen map[string]int // image_id -> row
	n    int
}

func newChecker(cols Columns) *checker { return &checker{cols: cols, seen: map[string]int{}} }

// check checks the next row.
func (c *checker) check(r Row) error {
	i := c.n
	c.n++
	if r.ImageID == "" {
		return fmt.Errorf("row %d: empty image_id", i)
	}
	if j, ok := c.seen[r.ImageID]; ok {
		return fmt.Errorf("row %d: image_id %q duplicates row %d", i, r.ImageID, j)
	}
	c.seen[r.ImageID] = i
	if r.Split == "" {
		return fmt.Errorf("row %d (%s): empty split", i, r.ImageID)
	}
	if c.cols.ImagePath != (r.ImagePath != "") {
		if r.ImagePath == "" {
			return fmt.Errorf("row %d (%s): empty image_path", i, r.ImageID)
		}
		return fmt.Errorf("row %d (%s): an image_path where the stream has none", i, r.ImageID)
	}
	if c.cols.ImageBytes != (len(r.ImageBytes) > 0) {
		if len(r.ImageBytes) == 0 {
			return fmt.Errorf("row %d (%s): no image bytes", i, r.ImageID)
		}
		return fmt.Errorf("row %d (%s): image bytes where the stream has none", i, r.ImageID)
	}
	if !c.cols.ImagePath && !c.cols.ImageBytes {
		return fmt.Errorf("row %d (%s): no image (neither image_path nor image_bytes)", i, r.ImageID)
	}
	if r.URL != "" && !c.cols.URL {
		return fmt.Errorf("row %d (%s): a url where the stream has none", i, r.ImageID)
	}
	if len(r.Captions) == 0 {
		return fmt.Errorf("row %d (%s): no captions", i, r.ImageID)
	}
	for k, cap := range r.Captions {
		if strings.TrimSpace(cap) == "" {
			return fmt.Errorf("row %d (%s): caption %d is empty", i, r.ImageID, k)
		}
	}
	return nil
}

// SplitCounts returns the number of images per split.
func SplitCounts(rows []Row) map[string]int {
	m := map[string]int{}
	for _, r := range rows {
		m[r.Split]++
	}
	return m
}

// FormatCounts renders split counts as "train=29000 val=1014 test=1000",
// the usual splits first, others alphabetically, for log lines.
func FormatCounts(m map[string]int) string {
	var keys []string
	for k := range m {
		if k != Train && k != Val && k != Test {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	keys = append([]string{Train, Val, Test}, keys...)
	var b strings.Builder
	for _, k := range keys {
		n, ok := m[k]
		if !ok {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, n)
	}
	return b.String()
}

// CaptionCount is the total number of captions over all rows.
func CaptionCount(rows []Row) int {
	n := 0
	for _, r := range rows {
		n += len(r.Captions)
	}
	return n
}
