// Package flickr30k converts a local copy of Flickr30k into rows: images
// plus either Karpathy's split file dataset_flickr30k.json or the annotation
// CSV of the Hugging Face mirror nlphuji/flickr30k (flickr_annotations_30k.csv;
// columns raw = JSON list of captions, sentids, split, filename, img_id).
// Both carry Karpathy's splits: 29,000 train, 1,014 val, 1,000 test images,
// five captions each. Download fetches and unpacks the mirror.
package flickr30k

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/bytedance/sonic"

	"github.com/clipline/clipline/internal/dataset"
)

// File names used by the two annotation formats and the mirror.
const (
	KarpathyFile = "dataset_flickr30k.json"
	CSVFile      = "flickr_annotations_30k.csv"
	ZipFile      = "flickr30k-images.zip"
	ImagesFolder = "flickr30k-images"
)

// KarpathySplits are the image counts of Karpathy's Flickr30k split.
var KarpathySplits = map[string]int{dataset.Train: 29000, dataset.Val: 1014, dataset.Test: 1000}

// Entry is one annotated image before its file is located.
type Entry struct {
	Filename string
	Split    string
	Captions []string
	Line     int // CSV record or JSON image index (1-based) for messages
}

// Options control Convert.
type Options struct {
	// Annotations is the annotation file; default: KarpathyFile or CSVFile
	// in the dataset directory, whichever exists (Karpathy's first).
	Annotations string
	// ImageDir holds the image files; default: the first of DIR/flickr30k-images,
	// DIR/flickr30k_images, DIR/images[/flickr30k-images], DIR that has the
	// first annotated file.
	ImageDir string
	// SkipMissing drops annotated images without a file (counted).
	SkipMissing bool
	// Log receives a line per skipped image (nil: none).
	Log io.Writer
}

// Stats summarises a conversion.
type Stats struct {
	Annotations string         // file read
	ImageDir    string         // where images were found
	Missing     int            // images skipped with SkipMissing
	Splits      map[string]int // images per split
}

// Report writes prepare's summary to w: images skipped, and splits that
// are not Karpathy's.
func (s Stats) Report(w io.Writer) {
	if s.Missing > 0 {
		fmt.Fprintf(w, "prepare: skipped %d annotated images without a file in %s\n", s.Missing, s.ImageDir)
	}
	if !IsKarpathy(s.Splits) {
		fmt.Fprintf(w, "prepare: note: splits %s differ from Karpathy's 29000/1014/1000 (a subset?)\n", dataset.FormatCounts(s.Splits))
	}
}

// Convert reads the annotations under dir and returns one row per image,
// in annotation order, with absolute image paths.
func Convert(dir string, opts Options) ([]dataset.Row, Stats, error) {
	var st Stats
	ann := opts.Annotations
	if ann == "" {
		for _, name := range []string{KarpathyFile, CSVFile} {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err == nil {
				ann = p
				break
			}
		}
		if ann == "" {
			return nil, st, fmt.Errorf("flickr30k: %s has neither %s nor %s (pass --annotations FILE, or --download)", dir, KarpathyFile, CSVFile)
		}
	}
	st.Annotations = ann
	entries, err := ReadAnnotations(ann)
	if err != nil {
		return nil, st, err
	}
	imgDir := opts.ImageDir
	if imgDir == "" {
		imgDir, err = findImageDir(dir, entries[0].Filename)
		if err != nil {
			return nil, st, err
		}
	}
	imgDir, err = filepath.Abs(imgDir)
	if err != nil {
		return nil, st, err
	}
	st.ImageDir = imgDir
	rows := make([]dataset.Row, 0, len(entries))
	seen := map[string]int{}
	for _, e := range entries {
		if j, ok := seen[e.Filename]; ok {
			return nil, st, fmt.Errorf("%s: entry %d repeats image %s of entry %d", ann, e.Line, e.Filename, j)
		}
		seen[e.Filename] = e.Line
		p := filepath.Join(imgDir, filepath.FromSlash(e.Filename))
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			if !opts.SkipMissing {
				return nil, st, fmt.Errorf("%s: entry %d: image %s not found in %s (use --skip-missing to drop such images)", ann, e.Line, e.Filename, imgDir)
			}
			st.Missing++
			if opts.Log != nil {
				fmt.Fprintf(opts.Log, "flickr30k: skipped missing image %s\n", p)
			}
			continue
		}
		rows = append(rows, dataset.Row{
			ImageID:   strings.TrimSuffix(e.Filename, filepath.Ext(e.Filename)),
			Split:     e.Split,
			ImagePath: p,
			Captions:  e.Captions,
		})
	}
	if len(rows) == 0 {
		return nil, st, fmt.Errorf("flickr30k: no images of %s found in %s", ann, imgDir)
	}
	st.Splits = dataset.SplitCounts(rows)
	return rows, st, nil
}

// findImageDir picks the folder that holds probe among the usual layouts.
func findImageDir(dir, probe string) (string, error) {
	var cands []string
	for _, base := range []string{dir, filepath.Join(dir, "images")} {
		cands = append(cands, filepath.Join(base, ImagesFolder), filepath.Join(base, "flickr30k_images"), base)
	}
	for _, c := range cands {
		if _, err := os.Stat(filepath.Join(c, probe)); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("flickr30k: image %s not found in any of %s (pass --image-root DIR)", probe, strings.Join(cands, ", "))
}

// ReadAnnotations reads a Karpathy JSON (.json) or mirror CSV (.csv).
func ReadAnnotations(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("flickr30k: %w", err)
	}
	defer f.Close()
	var entries []Entry
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		entries, err = ReadKarpathy(f, path)
	case ".csv":
		entries, err = ReadCSV(f, path)
	default:
		return nil, fmt.Errorf("flickr30k: %s: unknown annotation format (want Karpathy .json or mirror .csv)", path)
	}
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("flickr30k: %s has no images (empty input)", path)
	}
	return entries, nil
}

type karpathy struct {
	Images *[]struct {
		Filename  string `json:"filename"`
		Split     string `json:"split"`
		Sentences []struct {
			Raw string `json:"raw"`
		} `json:"sentences"`
	} `json:"images"`
}

// ReadKarpathy parses Karpathy's dataset_flickr30k.json. Karpathy's
// "restval" split (a COCO convention) is mapped to train.
func ReadKarpathy(r io.Reader, name string) ([]Entry, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("flickr30k: %s: %w", name, err)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, fmt.Errorf("flickr30k: %s is empty", name)
	}
	var k karpathy
	if err := sonic.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("flickr30k: %s: malformed JSON: %s", name, firstLine(err))
	}
	if k.Images == nil {
		return nil, fmt.Errorf(`flickr30k: %s: no "images" list (not a Karpathy split file)`, name)
	}
	out := make([]Entry, 0, len(*k.Images))
	for i, im := range *k.Images {
		e := Entry{Filename: im.Filename, Split: normSplit(im.Split), Line: i + 1}
		for _, s := range im.Sentences {
			if c := strings.TrimSpace(s.Raw); c != "" {
				e.Captions = append(e.Captions, c)
			}
		}
		if err := check(e); err != nil {
			return nil, fmt.Errorf("flickr30k: %s: image %d: %w", name, i+1, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// ReadCSV parses the nlphuji/flickr30k annotation CSV. Columns are found by
// header name; raw is a JSON list of the captions.
func ReadCSV(r io.Reader, name string) ([]Entry, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("flickr30k: %s is empty", name)
	}
	if err != nil {
		return nil, fmt.Errorf("flickr30k: %s: header: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimPrefix(strings.TrimSpace(h), "\ufeff")] = i
	}
	for _, need := range []string{"raw", "split", "filename"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("flickr30k: %s: no %q column (header %q)", name, need, strings.Join(header, ","))
		}
	}
	var out []Entry
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("flickr30k: %s: %w", name, err)
		}
		e := Entry{Filename: strings.TrimSpace(rec[col["filename"]]), Split: normSplit(rec[col["split"]]), Line: line}
		var caps []string
		if err := sonic.UnmarshalString(rec[col["raw"]], &caps); err != nil {
			return nil, fmt.Errorf("flickr30k: %s:%d: column raw is not a JSON list of strings: %s", name, line, firstLine(err))
		}
		for _, c := range caps {
			if c = strings.TrimSpace(c); c != "" {
				e.Captions = append(e.Captions, c)
			}
		}
		if err := check(e); err != nil {
			return nil, fmt.Errorf("flickr30k: %s:%d: %w", name, line, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func check(e Entry) error {
	switch {
	case e.Filename == "":
		return errors.New("empty filename")
	case !filepath.IsLocal(filepath.FromSlash(e.Filename)):
		return fmt.Errorf("filename %q is not a relative path inside the image folder", e.Filename)
	case e.Split == "":
		return fmt.Errorf("%s: empty split", e.Filename)
	case len(e.Captions) == 0:
		return fmt.Errorf("%s: no captions", e.Filename)
	}
	return nil
}

func normSplit(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "restval" {
		return dataset.Train
	}
	return s
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// IsKarpathy reports whether counts are exactly Karpathy's split.
func IsKarpathy(counts map[string]int) bool {
	if len(counts) != len(KarpathySplits) {
		return false
	}
	for k, v := range KarpathySplits {
		if counts[k] != v {
			return false
		}
	}
	return true
}
