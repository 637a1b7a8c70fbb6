package metrics

import (
	"fmt"
	"slices"
	"strings"

	"github.com/clipline/clipline/internal/stream"
)

// Rows are the embedded rows of a stream, gathered for ranking.
type Rows struct {
	Dim      int
	IDs      []string   // image_id per row ("row N" when the stream has none)
	Captions [][]string // captions per row (nil when not read)
	// CaptionEmb holds one embedding per caption, captions numbered in row
	// order; ImageEmb one per row. Either is nil when not read.
	CaptionEmb []float32
	ImageEmb   []float32
}

// Read selects what ReadRows gathers.
type Read struct {
	Images   bool // image_embedding
	Captions bool // captions and caption_embeddings
	// CaptionTexts reads the captions column without embeddings (e.g. a
	// gallery's captions, which only decide relevance).
	CaptionTexts bool
	Split        string // keep only rows whose split is this ("" keeps all)
}

// ReadRows gathers the rows of r. Errors name the input and the row.
func ReadRows(r *stream.Reader, want Read) (*Rows, error) {
	var cols []string
	if want.Images {
		cols = append(cols, stream.ColImageEmbedding)
	}
	if want.Captions {
		cols = append(cols, stream.ColCaptions, stream.ColCaptionEmbeddings)
	} else if want.CaptionTexts {
		cols = append(cols, stream.ColCaptions)
	}
	if want.Split != "" {
		cols = append(cols, stream.ColSplit)
	}
	if err := r.Require(cols...); err != nil {
		return nil, err
	}
	hasIDs := stream.HasColumn(r.Schema(), stream.ColImageID)
	if hasIDs {
		if err := r.Require(stream.ColImageID); err != nil {
			return nil, err
		}
	}
	out := &Rows{}
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
			sp, err := stream.Strings(rec, stream.ColSplit)
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
			if ids, err = stream.Strings(rec, stream.ColImageID); err != nil {
				return nil, r.Errorf("%w", err)
			}
		}
		var img stream.Vectors
		if want.Images {
			var err error
			if img, err = stream.ImageEmbeddings(rec); err != nil {
				return nil, r.Errorf("%w", err)
			}
			if err := setDim(img.Width, stream.ColImageEmbedding); err != nil {
				return nil, err
			}
		}
		var caps [][]string
		var cemb stream.VectorLists
		if want.Captions || want.CaptionTexts {
			var err error
			if caps, err = stream.StringLists(rec, stream.ColCaptions); err != nil {
				return nil, r.Errorf("%w", err)
			}
		}
		if want.Captions {
			var err error
			if cemb, err = stream.CaptionEmbeddings(rec); err != nil {
				return nil, r.Errorf("%w", err)
			}
			if err := setDim(cemb.Width, stream.ColCaptionEmbeddings); err != nil {
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
func (r *Rows) NumCaptions() int {
	n := 0
	for _, c := range r.Captions {
		n += len(c)
	}
	return n
}
