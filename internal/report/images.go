package report

import (
	"bytes"
	"errors"

	"github.com/clipline/clipline/internal/stream"
)

// Images are a stream's images by image_id: the encoded files in its
// image_bytes when it has the column (they win, as in decode), else the
// files its image_path names.
type Images struct {
	Paths map[string]string
	Bytes map[string][]byte
	close func() error
}

// Len is the number of images.
func (im *Images) Len() int { return max(len(im.Paths), len(im.Bytes)) }

// Close releases the mapped file that Bytes alias (LoadImages).
func (im *Images) Close() error {
	if im.close == nil {
		return nil
	}
	err := im.close()
	im.close, im.Bytes = nil, nil
	return err
}

// LoadImages reads image_id with image_bytes or image_path from a stream
// (prepare's, decode's or embed's output). image_bytes alias a memory map
// of an uncompressed IPC file (.arrow), valid until Close, so a large
// dataset costs no memory; from the stream format or a compressed file
// they are copied.
func LoadImages(path string) (im *Images, err error) {
	r, err := stream.OpenMapped(path)
	mapped := err == nil
	if errors.Is(err, stream.ErrNotMappable) {
		r, err = stream.Open(path)
	}
	if err != nil {
		return nil, err
	}
	keep := false // the map, for Bytes
	defer func() {
		if !keep {
			err = errors.Join(err, r.Close())
		}
	}()
	mapped = mapped && !r.Compressed()
	im = &Images{Paths: map[string]string{}}
	col := stream.ColImagePath
	if stream.HasColumn(r.Schema(), stream.ColImageBytes) {
		col, im.Paths, im.Bytes = stream.ColImageBytes, nil, map[string][]byte{}
	}
	if err := r.Require(stream.ColImageID, col); err != nil {
		return nil, err
	}
	for r.Next() {
		ids, err := stream.Strings(r.Batch(), stream.ColImageID)
		if err != nil {
			return nil, r.Errorf("%v", err)
		}
		if im.Bytes == nil {
			paths, err := stream.Strings(r.Batch(), col)
			if err != nil {
				return nil, r.Errorf("%v", err)
			}
			for i, id := range ids {
				im.Paths[id] = paths[i]
			}
			continue
		}
		data, err := stream.Binaries(r.Batch(), col)
		if err != nil {
			return nil, r.Errorf("%v", err)
		}
		for i, id := range ids {
			if !mapped {
				data[i] = bytes.Clone(data[i]) // the batch goes with Next
			}
			im.Bytes[id] = data[i]
		}
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if mapped && im.Bytes != nil {
		keep, im.close = true, r.Close
	}
	return im, nil
}
