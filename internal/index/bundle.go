package index

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/clipline/clipline/internal/mmapfile"
	"github.com/clipline/clipline/internal/search"
	"github.com/clipline/clipline/internal/stream"
)

// Bundle is an opened index bundle. Gallery's vectors are a memory map of
// vectors.panels, valid until Close (a copy when the file's panel width is
// not this machine's kernel's: Gallery.Repacked); the rows' metadata is in
// memory. Its methods are safe for concurrent use, Close excepted.
type Bundle struct {
	Dir      string
	Manifest Manifest
	Gallery  *search.Gallery

	unmap    func() error
	unmeta   func() error // meta.arrow's map, held while images alias it
	ids      []string
	images   [][]byte // image_bytes rows, aliasing meta.arrow's map; nil without
	paths    []string // nil when meta.arrow has no image_path
	splits   []string // nil without split
	captions [][]string
	caption  []string
	rows     map[string]int32 // image_id -> first row
	report   json.RawMessage
}

// Open opens the bundle in dir: reads its manifest and meta.arrow, checks
// them against each other and vectors.panels' size, and maps the vectors.
func Open(dir string) (*Bundle, error) {
	b := &Bundle{Dir: dir}
	fail := func(err error) (*Bundle, error) {
		b.Close()
		return nil, fmt.Errorf("index %s: %w", dir, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return fail(err)
	}
	if err := json.Unmarshal(raw, &b.Manifest); err != nil {
		return fail(fmt.Errorf("%s: %w", ManifestFile, err))
	}
	if err := b.Manifest.check(); err != nil {
		return fail(fmt.Errorf("%s: %w", ManifestFile, err))
	}
	if err := b.readMeta(filepath.Join(dir, MetaFile)); err != nil {
		return fail(fmt.Errorf("%s: %w", MetaFile, err))
	}
	m := b.Manifest
	if len(b.ids) != m.Count {
		return fail(fmt.Errorf("%s has %d rows, %s says %d", MetaFile, len(b.ids), ManifestFile, m.Count))
	}
	data, unmap, err := mmapfile.Map(filepath.Join(dir, VectorsFile))
	if err != nil {
		return fail(err)
	}
	b.unmap = unmap
	floats, err := floatsOf(data)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", VectorsFile, err))
	}
	if b.Gallery, err = search.NewGallery(floats, m.PanelWidth, m.Count, m.Dim); err != nil {
		return fail(fmt.Errorf("%s: %w", VectorsFile, err))
	}
	switch report, err := os.ReadFile(filepath.Join(dir, ReportFile)); {
	case err == nil:
		if !json.Valid(report) {
			return fail(fmt.Errorf("%s is not JSON", ReportFile))
		}
		b.report = report
	case !errors.Is(err, fs.ErrNotExist):
		return fail(err)
	}
	return b, nil
}

func (m Manifest) check() error {
	switch {
	case m.Format != FormatVersion:
		return fmt.Errorf("format %d; this clipline reads format %d (rebuild the index with this index)", m.Format, FormatVersion)
	case m.Kind != KindImages && m.Kind != KindCaptions:
		return fmt.Errorf("kind %q, want %s or %s", m.Kind, KindImages, KindCaptions)
	case m.Metric != MetricCosine:
		return fmt.Errorf("metric %q, want %s", m.Metric, MetricCosine)
	case m.Dim <= 0 || m.Count <= 0 || m.PanelWidth <= 0:
		return fmt.Errorf("dim %d, count %d, panel width %d: all must be positive", m.Dim, m.Count, m.PanelWidth)
	}
	return nil
}

// readMeta reads meta.arrow's rows into memory, except image_bytes: those
// stay in the file, mapped (the images of a self-contained stream), until
// Close.
func (b *Bundle) readMeta(path string) error {
	data, unmap, err := mmapfile.Map(path)
	if err != nil {
		return err
	}
	r, err := ipc.NewMappedFileReader(data)
	if err != nil {
		unmap()
		return err
	}
	defer r.Close()
	schema := r.Schema()
	hasPath, hasSplit := stream.HasColumn(schema, stream.ColImagePath), stream.HasColumn(schema, stream.ColSplit)
	images := b.Manifest.Kind == KindImages
	hasCaps := images && stream.HasColumn(schema, stream.ColCaptions)
	if images && stream.HasColumn(schema, stream.ColImageBytes) {
		b.unmeta = unmap
	} else {
		defer unmap() // everything read is copied
	}
	b.rows = map[string]int32{}
	for i := range r.NumRecords() {
		rec, err := r.RecordBatch(i)
		if err != nil {
			return err
		}
		ids, err := stream.Strings(rec, stream.ColImageID)
		if err != nil {
			return err
		}
		for k, id := range ids {
			if _, ok := b.rows[id]; !ok {
				b.rows[id] = int32(len(b.ids) + k)
			}
		}
		b.ids = append(b.ids, ids...)
		col := func(name string, dst *[]string) error {
			v, err := stream.Strings(rec, name)
			*dst = append(*dst, v...)
			return err
		}
		if hasPath {
			if err := col(stream.ColImagePath, &b.paths); err != nil {
				return err
			}
		}
		if hasSplit {
			if err := col(stream.ColSplit, &b.splits); err != nil {
				return err
			}
		}
		if b.unmeta != nil {
			// Uncompressed buffers alias the map (index writes meta.arrow so).
			v, err := stream.Binaries(rec, stream.ColImageBytes)
			if err != nil {
				return err
			}
			b.images = append(b.images, v...)
		}
		if !images {
			if err := col(ColCaption, &b.caption); err != nil {
				return err
			}
		}
		if hasCaps {
			caps, err := stream.StringLists(rec, stream.ColCaptions)
			if err != nil {
				return err
			}
			b.captions = append(b.captions, caps...)
		}
	}
	return nil
}

// Close unmaps the vectors; the Gallery is unusable afterwards.
func (b *Bundle) Close() error {
	var err error
	if b.unmeta != nil {
		err = b.unmeta()
		b.unmeta, b.images = nil, nil
	}
	if b.unmap != nil {
		err = errors.Join(err, b.unmap())
		b.unmap, b.Gallery = nil, nil
	}
	return err
}

// Len is the number of rows (vectors).
func (b *Bundle) Len() int { return len(b.ids) }

// Item is row's metadata; it panics when row is out of range.
func (b *Bundle) Item(row int32) Item {
	it := Item{Row: row, ImageID: b.ids[row]}
	if b.paths != nil {
		it.ImagePath = b.paths[row]
	}
	if b.splits != nil {
		it.Split = b.splits[row]
	}
	if b.captions != nil {
		it.Captions = b.captions[row]
	}
	if b.caption != nil {
		it.Caption = b.caption[row]
	}
	return it
}

// ImageBytes is row's encoded image file when the bundle holds the images
// (the indexed stream had image_bytes), else nil. It is the bundle's
// mapped memory: valid until Close, read-only.
func (b *Bundle) ImageBytes(row int32) []byte {
	if b.images == nil {
		return nil
	}
	return b.images[row]
}

// RowOf is the row of the image with this image_id: in an images index its
// one row, in a captions index the row of its first caption.
func (b *Bundle) RowOf(imageID string) (int32, bool) {
	r, ok := b.rows[imageID]
	return r, ok
}

// Report is the bundle's report.json, nil when it has none.
func (b *Bundle) Report() json.RawMessage { return b.report }
