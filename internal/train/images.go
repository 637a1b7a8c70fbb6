package train

import "fmt"

// Images are a split's decoded images, Side*Side*3 bytes each (uint8 HWC
// RGB), kept as rows of larger blocks. A block is either a copy (one image,
// or a decoded run of them) or a record batch's pixel buffer that aliases a
// memory-mapped file (ReadOptions.Mapped): then the pixels stay in the page
// cache, not in train's own memory, which holds only 8 bytes an image.
type Images struct {
	per    int // bytes per image
	blocks [][]byte
	at     []imageAt
}

// imageAt locates an image: row of block.
type imageAt struct{ block, row int32 }

// NewImages is an empty set of images of side x side pixels.
func NewImages(side int) *Images { return &Images{per: side * side * 3} }

// Len is the number of images.
func (im *Images) Len() int { return len(im.at) }

// Image returns image i's pixels. They alias the block (the map, for a
// mapped file): read only, valid as long as the block is.
func (im *Images) Image(i int) []byte {
	a := im.at[i]
	off := int(a.row) * im.per
	return im.blocks[a.block][off : off+im.per : off+im.per]
}

// Append adds one image, kept as given (not copied).
func (im *Images) Append(px []byte) {
	if len(px) != im.per {
		panic(fmt.Sprintf("train: image of %d bytes, expected %d", len(px), im.per))
	}
	im.AddRow(im.AddBlock(px), 0)
}

// AddBlock adds a block of whole images (not copied) and returns its
// number, for AddRow.
func (im *Images) AddBlock(b []byte) int {
	im.blocks = append(im.blocks, b)
	return len(im.blocks) - 1
}

// AddRow adds the image at row of block as the next image.
func (im *Images) AddRow(block, row int) {
	im.at = append(im.at, imageAt{block: int32(block), row: int32(row)})
}
