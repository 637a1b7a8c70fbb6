package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	flatbuffers "github.com/google/flatbuffers/go"
)

// batchInfo is what a record batch's metadata says without its body.
type batchInfo struct {
	rows       int64
	compressed bool
}

// Field offsets in the Arrow IPC flatbuffers (format/File.fbs, Message.fbs):
// a table's field n is at vtable offset 4+2n.
const (
	fbFooterRecordBatches = 10 // Footer.recordBatches: [Block]
	fbMessageHeaderType   = 6  // Message.header_type
	fbMessageHeader       = 8  // Message.header
	fbRecordBatchLength   = 4  // RecordBatch.length
	fbRecordBatchCompress = 10 // RecordBatch.compression
	fbHeaderRecordBatch   = 3  // MessageHeader.RecordBatch
	fbBlockSize           = 24 // struct Block {offset: long; metaDataLength: int; bodyLength: long}
)

// readBatchInfo reads the row count and compression of every record batch
// of the IPC file in ra (size bytes) from its footer and each batch's
// metadata, never the bodies: what Shard needs to number rows, at the cost
// of one small read a batch. arrow-go keeps this to itself, hence the
// flatbuffer reading here; damaged metadata is an error, not a panic.
func readBatchInfo(ra io.ReaderAt, size int64) (infos []batchInfo, err error) {
	err = recovered(func() error {
		tail := make([]byte, 4+len(fileMagic))
		if size < int64(len(tail)) {
			return errors.New("file too small for a footer")
		}
		if _, err := ra.ReadAt(tail, size-int64(len(tail))); err != nil {
			return err
		}
		n := int64(binary.LittleEndian.Uint32(tail))
		if string(tail[4:]) != fileMagic || n <= 0 || n > size-int64(len(tail)) {
			return errors.New("no footer at the end of the file")
		}
		footer := make([]byte, n)
		if _, err := ra.ReadAt(footer, size-int64(len(tail))-n); err != nil {
			return err
		}
		ft := root(footer)
		o := flatbuffers.UOffsetT(ft.Offset(fbFooterRecordBatches))
		if o == 0 {
			return nil
		}
		vec, count := ft.Vector(o), ft.VectorLen(o)
		if int64(count)*fbBlockSize > n {
			return fmt.Errorf("footer lists %d record batches in %d bytes", count, n)
		}
		infos = make([]batchInfo, count)
		for i := range infos {
			at := vec + flatbuffers.UOffsetT(i*fbBlockSize)
			offset := int64(binary.LittleEndian.Uint64(footer[at:]))
			metaLen := int64(int32(binary.LittleEndian.Uint32(footer[at+8:])))
			if offset < 0 || metaLen < 8 || metaLen > metadataSizeLimit || offset+metaLen > size {
				return fmt.Errorf("batch %d: footer block (offset %d, metadata %d bytes) outside the file", i+1, offset, metaLen)
			}
			meta := make([]byte, metaLen)
			if _, err := ra.ReadAt(meta, offset); err != nil {
				return fmt.Errorf("batch %d: %w", i+1, err)
			}
			if infos[i], err = parseBatchMeta(meta); err != nil {
				return fmt.Errorf("batch %d: %w", i+1, err)
			}
		}
		return nil
	})
	return infos, err
}

// parseBatchMeta reads one encapsulated message's metadata: the
// continuation marker (absent before Arrow 0.15), its length and the
// Message flatbuffer, which must hold a RecordBatch.
func parseBatchMeta(meta []byte) (batchInfo, error) {
	if binary.LittleEndian.Uint32(meta) == 0xFFFFFFFF {
		meta = meta[4:]
	}
	n := int(int32(binary.LittleEndian.Uint32(meta)))
	if n <= 0 || n > len(meta)-4 {
		return batchInfo{}, fmt.Errorf("message metadata length %d does not fit its block", n)
	}
	msg := root(meta[4 : 4+n])
	if msg.GetByteSlot(fbMessageHeaderType, 0) != fbHeaderRecordBatch {
		return batchInfo{}, errors.New("the footer points at a message that is not a record batch")
	}
	o := flatbuffers.UOffsetT(msg.Offset(fbMessageHeader))
	if o == 0 {
		return batchInfo{}, errors.New("record batch message without its header")
	}
	var rb flatbuffers.Table
	msg.Union(&rb, o)
	return batchInfo{
		rows:       rb.GetInt64Slot(fbRecordBatchLength, 0),
		compressed: rb.Offset(fbRecordBatchCompress) != 0,
	}, nil
}

func root(buf []byte) *flatbuffers.Table {
	return &flatbuffers.Table{Bytes: buf, Pos: flatbuffers.GetUOffsetT(buf)}
}
