package index

import (
	"encoding/binary"
)

// FAISS's serialisation of an IndexFlatIP (faiss/impl/index_write.cpp:
// write_index's IndexFlat branch), little-endian: the fourcc "IxFI", the
// index header (d int32, ntotal int64, two unused int64 of 1<<20,
// is_trained uint8, metric_type int32: 0 is METRIC_INNER_PRODUCT), then the
// vectors as faiss writes a float vector: its length in floats (uint64)
// and the floats, row-major.
const (
	faissFourcc       = "IxFI"
	faissDummy        = 1 << 20
	faissInnerProduct = 0
	faissNTotalAt     = 8  // offset of ntotal
	faissSizeAt       = 37 // offset of the vector's length
)

// faissFile writes a FAISS IndexFlatIP whose row i is the i-th vector
// written, for faiss.read_index.
type faissFile struct {
	ff  *floatFile
	dim int
	n   int64
}

func createFaiss(path string, dim int) (*faissFile, error) {
	h := []byte(faissFourcc)
	h = binary.LittleEndian.AppendUint32(h, uint32(dim))
	h = binary.LittleEndian.AppendUint64(h, 0) // ntotal, patched by close
	h = binary.LittleEndian.AppendUint64(h, faissDummy)
	h = binary.LittleEndian.AppendUint64(h, faissDummy)
	h = append(h, 1) // is_trained: a flat index needs no training
	h = binary.LittleEndian.AppendUint32(h, faissInnerProduct)
	h = binary.LittleEndian.AppendUint64(h, 0) // the length, patched by close
	ff, err := createFloats(path, h)
	if err != nil {
		return nil, err
	}
	return &faissFile{ff: ff, dim: dim}, nil
}

// write adds row-major vectors.
func (f *faissFile) write(rows []float32) {
	f.ff.write(rows)
	f.n += int64(len(rows) / f.dim)
}

func (f *faissFile) close() error {
	return f.ff.close(map[int64][]byte{
		faissNTotalAt: binary.LittleEndian.AppendUint64(nil, uint64(f.n)),
		faissSizeAt:   binary.LittleEndian.AppendUint64(nil, uint64(f.n)*uint64(f.dim)),
	})
}
