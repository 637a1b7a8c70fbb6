package index

import (
	"encoding/binary"
	"fmt"
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
)

// writeFaiss writes the n×dim row-major vectors as a FAISS IndexFlatIP
// whose row i is vector i, for faiss.read_index.
func writeFaiss(path string, vecs []float32, n, dim int) error {
	if len(vecs) != n*dim {
		return fmt.Errorf("index: faiss: %d values for %d vectors of %d", len(vecs), n, dim)
	}
	h := []byte(faissFourcc)
	h = binary.LittleEndian.AppendUint32(h, uint32(dim))
	h = binary.LittleEndian.AppendUint64(h, uint64(n))
	h = binary.LittleEndian.AppendUint64(h, faissDummy)
	h = binary.LittleEndian.AppendUint64(h, faissDummy)
	h = append(h, 1) // is_trained: a flat index needs no training
	h = binary.LittleEndian.AppendUint32(h, faissInnerProduct)
	h = binary.LittleEndian.AppendUint64(h, uint64(len(vecs)))
	return writeFloats(path, h, vecs)
}
