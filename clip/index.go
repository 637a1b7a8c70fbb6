package clip

import (
	"fmt"
	"image"
	"sync"

	"github.com/clipline/clipline/internal/index"
	"github.com/clipline/clipline/internal/modelid"
)

// Index is a search index bundle written by the index stage (a directory
// with manifest.json, meta.arrow and vectors.panels), opened for exact
// search from a Go program: the same search serve runs, with the same
// scores (cosine similarities, bit-identical to rank's) and order (highest
// first, equal scores by index order).
//
//	ix, err := clip.OpenIndex("out/default/index")
//	m, err := clip.Load("out/default/run/final") // the model that built it
//	hits, err := ix.SearchText(m, "a red car", 10)
//
// Its methods are safe for concurrent use.
type Index struct {
	b       *index.Bundle
	checked sync.Map // *Model → error of the model check
}

// Hit is one search result.
type Hit struct {
	Rank      int     // 1 for the best
	Row       int     // the row in the index (meta.arrow's order)
	Score     float32 // the dot product with the query: cosine for unit queries
	ImageID   string
	ImagePath string // as the indexed stream gave it
	Split     string
	Caption   string   // a captions index: the row's caption
	Captions  []string // an images index: the image's captions
}

// OpenIndex opens the bundle in dir. The vectors are memory-mapped, not
// read, so opening is quick whatever the size; Close releases them.
func OpenIndex(dir string) (*Index, error) {
	b, err := index.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	return &Index{b: b}, nil
}

// ImageBytes is the encoded image file of the index's row (Hit.Row) when
// the bundle holds the images (it was built from a stream with
// image_bytes: prepare --embed-images, prepare webdataset), else nil. It is
// the bundle's mapped memory: read-only, valid until Close.
func (x *Index) ImageBytes(row int) []byte { return x.b.ImageBytes(int32(row)) }

// Close releases the index. Hits already returned stay valid.
func (x *Index) Close() error { return x.b.Close() }

// Len is the number of indexed vectors.
func (x *Index) Len() int { return x.b.Len() }

// Dim is their dimension.
func (x *Index) Dim() int { return x.b.Manifest.Dim }

// Kind is what a row is: "images" (one vector per image) or "captions"
// (one per caption, for image-to-text search).
func (x *Index) Kind() string { return x.b.Manifest.Kind }

// ModelHash and ModelSource identify the model that embedded the vectors
// (its content hash, and the path or hub id it was loaded from).
func (x *Index) ModelHash() string { return x.b.Manifest.Model.Hash }

// ModelSource is the path or hub id of the model that built the index.
func (x *Index) ModelSource() string { return x.b.Manifest.Model.Source }

// SearchVector returns the k rows with the highest dot product with query
// (len Dim; L2-normalise it for cosine scores), best first. k larger than
// the index returns every row.
func (x *Index) SearchVector(query []float32, k int) ([]Hit, error) {
	if len(query) != x.Dim() {
		return nil, fmt.Errorf("clip: query has %d dimensions, the index %s %d", len(query), x.b.Dir, x.Dim())
	}
	if k < 1 {
		return nil, fmt.Errorf("clip: k is %d, want at least 1", k)
	}
	res, err := x.b.Gallery.Search(query, k, nil)
	if err != nil {
		return nil, fmt.Errorf("clip: index %s: %w", x.b.Dir, err)
	}
	hits := make([]Hit, len(res[0]))
	for i, h := range res[0] {
		it := x.b.Item(h.Row)
		hits[i] = Hit{Rank: i + 1, Row: int(h.Row), Score: h.Score, ImageID: it.ImageID,
			ImagePath: it.ImagePath, Split: it.Split, Caption: it.Caption, Captions: it.Captions}
	}
	return hits, nil
}

// SearchText embeds text with m and searches for it. m must be the model
// that built the index (checked once per model by content hash): another
// model's vectors live in another space.
func (x *Index) SearchText(m *Model, text string, k int) ([]Hit, error) {
	return x.searchEncoded(m, k, func() ([][]float32, error) { return m.EncodeText([]string{text}) })
}

// SearchImage embeds img with m (checked as for SearchText) and searches
// for it.
func (x *Index) SearchImage(m *Model, img image.Image, k int) ([]Hit, error) {
	return x.searchEncoded(m, k, func() ([][]float32, error) { return m.EncodeImage([]image.Image{img}) })
}

// SearchImageFile embeds the image file at path with m (decoded and
// preprocessed as EncodeImageFiles does) and searches for it.
func (x *Index) SearchImageFile(m *Model, path string, k int) ([]Hit, error) {
	return x.searchEncoded(m, k, func() ([][]float32, error) { return m.EncodeImageFiles([]string{path}) })
}

// searchEncoded checks m, embeds the query with encode and searches for it.
func (x *Index) searchEncoded(m *Model, k int, encode func() ([][]float32, error)) ([]Hit, error) {
	if err := x.CheckModel(m); err != nil {
		return nil, err
	}
	q, err := encode()
	if err != nil {
		return nil, err
	}
	return x.SearchVector(q[0], k)
}

// Similar returns the images most like the indexed image imageID (an
// images index; the image itself comes first, with score 1).
func (x *Index) Similar(imageID string, k int) ([]Hit, error) {
	row, ok := x.b.RowOf(imageID)
	if !ok {
		return nil, fmt.Errorf("clip: index %s has no image_id %q", x.b.Dir, imageID)
	}
	return x.SearchVector(x.b.Gallery.Vector(row, nil), k)
}

// CheckModel says whether m is the model that built the index, by the hash
// of its config and weights recorded in the manifest. It hashes m's files
// once per model and index.
func (x *Index) CheckModel(m *Model) error {
	if v, ok := x.checked.Load(m); ok {
		return asError(v)
	}
	err := x.checkModel(m)
	x.checked.Store(m, err)
	return err
}

func asError(v any) error {
	if v == nil {
		return nil
	}
	err, _ := v.(error)
	return err
}

func (x *Index) checkModel(m *Model) error {
	want := x.ModelHash()
	if want == "" {
		return nil // built from a stream that did not record its model's hash
	}
	got, err := modelid.Hash(m.Dir())
	if err != nil {
		return fmt.Errorf("clip: %w", err)
	}
	if got != want {
		return fmt.Errorf("clip: index %s was built with the model %s (%s), not %s (%s)",
			x.b.Dir, x.ModelSource(), want, m.Dir(), got)
	}
	return nil
}
