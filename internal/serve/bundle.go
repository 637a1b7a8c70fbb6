package serve

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/clipline/clipline/internal/decode"
	"github.com/clipline/clipline/internal/index"
	"github.com/clipline/clipline/internal/stream"
)

// split is the rows of one split.
type split struct {
	rows []bool
	n    int
}

// loaded is an open bundle with what the handlers look up in it, computed
// once when it is opened.
type loaded struct {
	dir    string
	b      *index.Bundle
	m      index.Manifest
	splits map[string]*split // by name
	// byCaption: an images bundle's rows by exact caption text, for the
	// relevance rank's ordering uses (a caption is relevant to every image
	// holding the same text).
	byCaption map[string][]int32
	imageRoot string    // relative image paths resolve against it
	modTime   time.Time // meta.arrow's: when the images inside the bundle changed
}

func load(dir, kind string) (*loaded, error) {
	b, err := index.Open(dir)
	if err != nil {
		return nil, err
	}
	l := &loaded{dir: dir, b: b, m: b.Manifest, splits: map[string]*split{}}
	if l.m.Kind != kind {
		b.Close()
		return nil, fmt.Errorf("index %s is a %s index; want a %s index here", dir, l.m.Kind, kind)
	}
	if l.imageRoot, err = imageRoot(l.m.Provenance); err != nil {
		b.Close()
		return nil, fmt.Errorf("index %s: %w", dir, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, index.MetaFile)); err == nil {
		l.modTime = fi.ModTime()
	}
	n := b.Len()
	if kind == index.KindImages {
		l.byCaption = map[string][]int32{}
	}
	for r := range int32(n) {
		it := b.Item(r)
		s := l.splits[it.Split]
		if s == nil {
			s = &split{rows: make([]bool, n)}
			l.splits[it.Split] = s
		}
		s.rows[r] = true
		s.n++
		for _, c := range it.Captions {
			if rows := l.byCaption[c]; len(rows) == 0 || rows[len(rows)-1] != r {
				l.byCaption[c] = append(rows, r)
			}
		}
	}
	return l, nil
}

// splitNames lists the bundle's splits, for messages.
func (l *loaded) splitNames() []string {
	var names []string
	for s := range l.splits {
		names = append(names, fmt.Sprintf("%q", s))
	}
	slices.Sort(names)
	return names
}

// path is where item's image file is: its image_path resolved as decode
// resolved it when the vectors were made.
func (l *loaded) path(it index.Item) string { return decode.Resolve(l.imageRoot, it.ImagePath) }

// imageRoot finds the --image-root that decode was given in the bundle's
// provenance ("" when none: paths are relative to the working directory, as
// decode resolved them).
func imageRoot(prov json.RawMessage) (string, error) {
	if len(prov) == 0 {
		return "", nil
	}
	var steps []stream.Step
	if err := json.Unmarshal(prov, &steps); err != nil {
		return "", fmt.Errorf("manifest provenance is not a list of steps: %w", err)
	}
	root := ""
	for _, s := range steps {
		if s.Stage != "decode" {
			continue
		}
		for i, a := range s.Args {
			if a == "--image-root" && i+1 < len(s.Args) {
				root = s.Args[i+1]
			} else if v, ok := strings.CutPrefix(a, "--image-root="); ok {
				root = v
			}
		}
	}
	return root, nil
}

// BundleModel is the model recorded in the manifest of the bundle in dir
// (for serve --compare without --compare-model).
func BundleModel(dir string) (index.Model, error) {
	raw, err := os.ReadFile(filepath.Join(dir, index.ManifestFile))
	if err != nil {
		return index.Model{}, err
	}
	var m index.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return index.Model{}, fmt.Errorf("%s: %w", filepath.Join(dir, index.ManifestFile), err)
	}
	if m.Model.Source == "" {
		return index.Model{}, fmt.Errorf("%s records no model source", filepath.Join(dir, index.ManifestFile))
	}
	return m.Model, nil
}
