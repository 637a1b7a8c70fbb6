package index

import "fmt"

// Until internal/search lands, vectors.panels holds the vectors row-major,
// which is search.Pack's layout at panel width 1 (search.NewGallery repacks
// such a file for its kernel), and Gallery stands in for search.Gallery.

// pack is search.Pack at panel width 1.
func pack(rows []float32, dim int) (data []float32, width int) { return rows, 1 }

// Gallery is the bundle's vectors.
type Gallery struct {
	data   []float32
	n, dim int
}

func newGallery(data []float32, width, n, dim int) (*Gallery, error) {
	if width != 1 || len(data) != n*dim {
		return nil, fmt.Errorf("%d values for %d vectors of dimension %d in panels of %d", len(data), n, dim, width)
	}
	return &Gallery{data: data, n: n, dim: dim}, nil
}

// Len is the number of vectors.
func (g *Gallery) Len() int { return g.n }

// Dim is their dimension.
func (g *Gallery) Dim() int { return g.dim }

// Vector returns row's vector, copied into dst (reused when large enough).
func (g *Gallery) Vector(row int32, dst []float32) []float32 {
	return append(dst[:0], g.data[int(row)*g.dim:int(row+1)*g.dim]...)
}
