package jsonl

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bytedance/sonic"

	"github.com/clipline/clipline/internal/atomicfile"
	"github.com/clipline/clipline/internal/dataset"
)

// WriteSplits writes rows as vembed-factory's layout: dir/SPLIT.jsonl for
// each split, one {"query": caption, "positive": path} line per caption,
// the path relative to dir (absolute when the image is outside it), so
// image_root is dir. Reading a file back gives its rows (split apart).
// Each file appears only once complete; it returns their paths, and says
// what it wrote on log (nil: nothing).
func WriteSplits(dir string, rows []dataset.Row, log io.Writer) ([]string, error) {
	if err := dataset.Validate(rows); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("jsonl: %w", err)
	}
	bufs := map[string]*bytes.Buffer{}
	for _, r := range rows {
		p, err := filepath.Rel(abs, r.ImagePath)
		if err != nil || !filepath.IsLocal(p) {
			p = r.ImagePath
		}
		b := bufs[r.Split]
		if b == nil {
			b = &bytes.Buffer{}
			bufs[r.Split] = b
		}
		for _, c := range r.Captions {
			line, err := sonic.Marshal(struct {
				Query    string `json:"query"`
				Positive string `json:"positive"`
			}{c, filepath.ToSlash(p)})
			if err != nil {
				return nil, fmt.Errorf("jsonl: %s: %w", r.ImageID, err)
			}
			b.Write(line)
			b.WriteByte('\n')
		}
	}
	var paths []string
	for s := range bufs {
		paths = append(paths, filepath.Join(dir, s+".jsonl"))
	}
	sort.Strings(paths)
	for _, p := range paths {
		split := filepath.Base(p[:len(p)-len(".jsonl")])
		if err := atomicfile.WriteFile(p, bufs[split].Bytes(), 0o644); err != nil {
			return nil, fmt.Errorf("jsonl: %w", err)
		}
	}
	if log != nil {
		fmt.Fprintf(log, "prepare: %d images (%s), %d captions -> %s\n", len(rows),
			dataset.FormatCounts(dataset.SplitCounts(rows)), dataset.CaptionCount(rows), strings.Join(paths, " "))
	}
	return paths, nil
}
