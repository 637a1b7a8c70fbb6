package stream

import (
	"fmt"
	"slices"
	"strings"
)

// Embedded are the embedded rows of a stream (embed's output), gathered
// whole: what rank and a search index need in memory.
type Embedded struct {
	Dim      int
	IDs      []string   // image_id per row ("row N" when the stream has none)
	Captions [][]string // captions per row (nil when not read)
	// CaptionEmb holds one embedding per caption, captions numbered in row
	// order; ImageEmb one per row. Either is nil when not read.
	CaptionEmb []float32
	ImageEmb   []float32
}

// Gather selects what ReadEmbedded reads.
type Gather struct {
	Images   bool // image_embedding
	Captions bool // captions and caption_embeddings
	// CaptionTexts reads the captions column without embeddings (e.g. a
	// gallery's captions, which only decide relevance).
	CaptionTexts bool
	Split        string // keep only rows whose split is this ("" keeps all)
}

// ReadEmbedded gathers the rows of r. Errors name the input and the row.
func ReadEmbedded(r *Reader, want Gather) (*Embedded, error) {
	var cols []string
	if want.Images {
		cols = append(cols, ColImageEmbedding)
	}
	if want.Captions {
		cols = append(cols, ColCaptions, ColCaptionEmbeddings)
	} else if want.CaptionTexts {
		cols = append(cols, ColCaptions)
	}
	if want.Split != "" {
		cols = append(cols, ColSplit)
	}
	if err := r.Require(cols...); err != nil {
		return nil, err
	}
	hasIDs := HasColumn(r.Schema(), ColImageID)
	if hasIDs {
		if err := r.Require(ColImageID); err != nil {
			return nil, err
		}
	}
	out := &Embedded{}
	splits := map[string]int{}
	setDim := func(d int, what string) error {
		if out.Dim == 0 {
			out.Dim = d
		} else if out.Dim != d {
			return r.Errorf("%s has dimension %d, other embeddings %d", what, d, out.Dim)
		}
		return nil
	}
	for r.Next() {
		rec := r.Batch()
		first := r.FirstRow()
		keep := make([]bool, rec.NumRows())
		for i := range keep {
			keep[i] = true
		}
		if want.Split != "" {
			sp, err := Strings(rec, ColSplit)
			if err != nil {
				return nil, r.Errorf("%w", err)
			}
			for i, s := range sp {
				splits[s]++
				keep[i] = s == want.Split
			}
		}
		var ids []string
		if hasIDs {
			var err error
			if ids, err = Strings(rec, ColImageID); err != nil {
				return nil, r.Errorf("%w", err)
			}
		}
		var img Vectors
		if want.Images {
			var err error
			if img, err = ImageEmbeddings(rec); err != nil {
				return nil, r.Errorf("%w", err)
			}
			if err := setDim(img.Width, ColImageEmbedding); err != nil {
				return nil, err
			}
		}
		var caps [][]string
		var cemb VectorLists
		if want.Captions || want.CaptionTexts {
			var err error
			if caps, err = StringLists(rec, ColCaptions); err != nil {
				return nil, r.Errorf("%w", err)
			}
		}
		if want.Captions {
			var err error
			if cemb, err = CaptionEmbeddings(rec); err != nil {
				return nil, r.Errorf("%w", err)
			}
			if err := setDim(cemb.Width, ColCaptionEmbeddings); err != nil {
				return nil, err
			}
		}
		for i, k := range keep {
			if !k {
				continue
			}
			row := first + int64(i)
			if hasIDs {
				out.IDs = append(out.IDs, ids[i])
			} else {
				out.IDs = append(out.IDs, fmt.Sprintf("row %d", row))
			}
			if want.Images {
				out.ImageEmb = append(out.ImageEmb, img.Row(i)...)
			}
			if want.Captions {
				if n := cemb.Count(i); n != len(caps[i]) {
					return nil, r.Errorf("row %d: %d captions but %d caption embeddings; re-run embed", row, len(caps[i]), n)
				}
				out.CaptionEmb = append(out.CaptionEmb, cemb.Row(i)...)
			}
			if caps != nil {
				out.Captions = append(out.Captions, caps[i])
			}
		}
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if len(out.IDs) == 0 {
		if want.Split != "" {
			var names []string
			for s := range splits {
				names = append(names, s)
			}
			slices.Sort(names)
			return nil, r.Errorf("no rows with split %q (splits present: %s)", want.Split, strings.Join(names, ", "))
		}
		return nil, r.Errorf("no rows")
	}
	return out, nil
}

// NumCaptions counts the captions gathered.
func (r *Embedded) NumCaptions() int {
	n := 0
	for _, c := range r.Captions {
		n += len(c)
	}
	return n
}
