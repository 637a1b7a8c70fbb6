package metrics

import "slices"

// SingleStream builds the relevance of one stream of rows (one row per
// image, captions numbered in row order: row 0's captions first).
//
// Text to image: a caption is relevant to every image whose captions hold
// the same text (exact string match), so duplicated captions are
// multi-positive. Image to text: an image's relevant captions are its own.
func SingleStream(captions [][]string) (t2i, i2t Relevance) {
	byText := map[string][]int32{}
	for g, caps := range captions {
		for _, c := range caps {
			if l := byText[c]; len(l) == 0 || l[len(l)-1] != int32(g) {
				byText[c] = append(l, int32(g))
			}
		}
	}
	t2i.Offsets = []int32{0}
	i2t.Offsets = []int32{0}
	var next int32
	for _, caps := range captions {
		for _, c := range caps {
			t2i.Items = append(t2i.Items, byText[c]...)
			t2i.Offsets = append(t2i.Offsets, int32(len(t2i.Items)))
			i2t.Items = append(i2t.Items, next)
			next++
		}
		i2t.Offsets = append(i2t.Offsets, int32(len(i2t.Items)))
	}
	return t2i, i2t
}

// WithGallery builds the relevance of query rows (ids and captions, captions
// numbered in row order) against a separate gallery of images.
//
// A caption is relevant to a gallery image when the image has the same
// image_id as the caption's row, or when the image's captions hold the same
// text (galleryCaptions may be nil). Image to text is the same relation seen
// from the image.
func WithGallery(queryIDs []string, queryCaptions [][]string, galleryIDs []string, galleryCaptions [][]string) (t2i, i2t Relevance) {
	byText := map[string][]int32{}
	for g, caps := range galleryCaptions {
		for _, c := range caps {
			if l := byText[c]; len(l) == 0 || l[len(l)-1] != int32(g) {
				byText[c] = append(l, int32(g))
			}
		}
	}
	byID := map[string][]int32{}
	for g, id := range galleryIDs {
		byID[id] = append(byID[id], int32(g))
	}
	t2i.Offsets = []int32{0}
	perImage := make([][]int32, len(galleryIDs))
	var c int32
	var buf []int32
	for r, caps := range queryCaptions {
		for _, text := range caps {
			buf = append(buf[:0], byText[text]...)
			if queryIDs != nil {
				buf = append(buf, byID[queryIDs[r]]...)
			}
			slices.Sort(buf)
			buf = slices.Compact(buf)
			t2i.Items = append(t2i.Items, buf...)
			t2i.Offsets = append(t2i.Offsets, int32(len(t2i.Items)))
			for _, g := range buf {
				perImage[g] = append(perImage[g], c)
			}
			c++
		}
	}
	i2t.Offsets = []int32{0}
	for _, l := range perImage {
		i2t.Items = append(i2t.Items, l...)
		i2t.Offsets = append(i2t.Offsets, int32(len(i2t.Items)))
	}
	return t2i, i2t
}
