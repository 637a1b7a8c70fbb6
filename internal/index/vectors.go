package index

import (
	"path/filepath"

	"github.com/clipline/clipline/internal/search"
)

// chunkRows is about how many vectors vectorWriter packs at a time.
const chunkRows = 4096

// vectorWriter writes the unit vectors as they are read, so a large index
// is never held in memory whole: vectors.panels a chunk of whole panels
// at a time (search.Pack of such a chunk is that stretch of the packed
// file) and faiss.index row by row.
type vectorWriter struct {
	dim, width, chunk int
	pend              []float32 // vectors not yet written, fewer than chunk
	written           int
	panels            *floatFile
	faiss             *faissFile // nil without --faiss
}

func newVectorWriter(dir string, dim int, faiss bool) (*vectorWriter, error) {
	// The panel width is the kernel's: what Pack of one vector says.
	_, width := search.Pack(make([]float32, dim), dim)
	v := &vectorWriter{dim: dim, width: width, chunk: (chunkRows + width - 1) / width * width}
	var err error
	if v.panels, err = createFloats(filepath.Join(dir, VectorsFile), nil); err != nil {
		return nil, err
	}
	if faiss {
		if v.faiss, err = createFaiss(filepath.Join(dir, FaissFile), dim); err != nil {
			v.panels.close(nil)
			return nil, err
		}
	}
	v.pend = make([]float32, 0, v.chunk*dim)
	return v, nil
}

// add appends vec at unit length (appendUnit), or says why it cannot.
func (v *vectorWriter) add(vec []float32) error {
	var err error
	if v.pend, err = appendUnit(v.pend, vec); err != nil {
		return err
	}
	if len(v.pend) == v.chunk*v.dim {
		v.flush()
	}
	return nil
}

func (v *vectorWriter) flush() {
	data, _ := search.Pack(v.pend, v.dim)
	v.panels.write(data)
	if v.faiss != nil {
		v.faiss.write(v.pend)
	}
	v.written += len(v.pend) / v.dim
	v.pend = v.pend[:0]
}

// count is the number of vectors added.
func (v *vectorWriter) count() int { return v.written + len(v.pend)/v.dim }

// close writes what is pending (the last panel padded with zeros) and
// closes the files; the first error wins. Calling it again does nothing.
func (v *vectorWriter) close() error {
	if v.panels.f != nil && len(v.pend) > 0 {
		v.flush()
	}
	err := v.panels.close(nil)
	if v.faiss != nil {
		if ferr := v.faiss.close(); err == nil {
			err = ferr
		}
	}
	return err
}
