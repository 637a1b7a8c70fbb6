package train

import (
	"fmt"
	"path/filepath"

	"github.com/clipline/clipline/internal/imageproc"
	"github.com/clipline/clipline/internal/model"
	"github.com/clipline/clipline/internal/stream"
)

// Data is one split: images (uint8 HWC RGB at the model's size) and their
// (caption, image) pairs with token ids. The pairs and tokens are in
// memory; the pixels are wherever Pixels keeps them (a memory-mapped file
// for the train stage).
type Data struct {
	Name    string // input name and split, for messages
	Side    int    // image side
	Context int    // token context length

	ImageIDs []string
	Pixels   *Images

	// One entry per pair: the caption text, its tokens [Context], its image.
	Captions  []string
	Tokens    []int32
	PairImage []int32
}

// Images is the number of images (including ones without captions, which
// still count as distractors in validation).
func (d *Data) Images() int { return len(d.ImageIDs) }

// Pairs is the number of (caption, image) pairs.
func (d *Data) Pairs() int { return len(d.PairImage) }

// Image returns image i's pixels.
func (d *Data) Image(i int) []byte { return d.Pixels.Image(i) }

// PairTokens returns pair p's token ids.
func (d *Data) PairTokens(p int) []int32 { return d.Tokens[p*d.Context : (p+1)*d.Context] }

// ReadOptions say what ReadSplits keeps and how it checks rows against the
// model.
type ReadOptions struct {
	// Side is the model's image size; pixels of another size are an error.
	Side int
	// MaxContext is the model's context length; wider token rows are an error.
	MaxContext int
	// VocabSize bounds token ids (0: unchecked).
	VocabSize int
	// Geometry, ImageRoot and Workers are how a stream without pixels is
	// decoded (the model's preprocessor, relative paths' root, goroutines;
	// 0: all cores) before ReadSplits reads it: internal/traindata runs
	// the decode stage's code into a spool.
	Geometry  imageproc.Geometry
	ImageRoot string
	Workers   int
	// Mapped says that the reader's pixel buffers alias a memory map
	// (stream.OpenMapped of an uncompressed file) and stay valid until it
	// is closed: Data then points into them instead of copying, and the
	// reader must outlive the Data.
	Mapped bool
}

// AllSplits as a split name keeps every row, whatever its split.
const AllSplits = "*"

// ReadSplits reads a whole stream and returns one Data per requested split
// name (AllSplits keeps every row). Rows of other splits are skipped. A
// stream without a split column puts every row in the first split named
// (and in AllSplits), so the others come back empty.
// Required columns: captions, caption_tokens and pixels.
func ReadSplits(r *stream.Reader, splits []string, o ReadOptions) (map[string]*Data, error) {
	name := r.Name()
	if err := r.Require(stream.ColCaptions, stream.ColCaptionTokens, stream.ColPixels); err != nil {
		return nil, err
	}
	schema := r.Schema()
	hasSplit := stream.HasColumn(schema, stream.ColSplit)
	hasID := stream.HasColumn(schema, stream.ColImageID)

	out := map[string]*Data{}
	for _, s := range splits {
		out[s] = &Data{Name: fmt.Sprintf("%s (split %s)", name, s), Side: o.Side, Pixels: NewImages(o.Side)}
	}
	ctx := 0
	for r.Next() {
		rec := r.Batch()
		first := r.FirstRow()
		n := int(rec.NumRows())
		var splitCol, ids []string
		var err error
		if hasSplit {
			if splitCol, err = stream.Strings(rec, stream.ColSplit); err != nil {
				return nil, r.Errorf("batch %d: %w", r.BatchIndex(), err)
			}
		}
		if hasID {
			if ids, err = stream.Strings(rec, stream.ColImageID); err != nil {
				return nil, r.Errorf("batch %d: %w", r.BatchIndex(), err)
			}
		}
		caps, err := stream.StringLists(rec, stream.ColCaptions)
		if err != nil {
			return nil, r.Errorf("batch %d: %w", r.BatchIndex(), err)
		}
		toks, err := stream.CaptionTokens(rec)
		if err != nil {
			return nil, r.Errorf("batch %d: %w", r.BatchIndex(), err)
		}
		if ctx == 0 {
			ctx = toks.Width
			if o.MaxContext > 0 && ctx > o.MaxContext {
				return nil, fmt.Errorf("%s: caption_tokens have context %d but the model's is %d; tokenize with this model", name, ctx, o.MaxContext)
			}
			for _, d := range out {
				d.Context = ctx
			}
		}
		pix, err := stream.Pixels(rec)
		if err != nil {
			return nil, r.Errorf("batch %d: %w", r.BatchIndex(), err)
		}
		if side := stream.ImageSide(pix); side != o.Side {
			return nil, fmt.Errorf("%s: pixels are %dx%d but the model takes %dx%d; run decode with this model (or drop the pixels column to let train decode)", name, side, side, o.Side, o.Side)
		}
		block := map[string]int{} // a split's block of this batch's mapped pixels
		for i := 0; i < n; i++ {
			row := first + int64(i)
			var keys []string
			for k, sp := range splits {
				if sp == AllSplits || (hasSplit && sp == splitCol[i]) || (!hasSplit && k == 0) {
					keys = append(keys, sp)
				}
			}
			if len(keys) == 0 {
				continue
			}
			if toks.Count(i) != len(caps[i]) {
				return nil, fmt.Errorf("%s: row %d: %d captions but %d caption_tokens; re-run tokenize", name, row, len(caps[i]), toks.Count(i))
			}
			for j := 0; j < toks.Count(i); j++ {
				if err := checkTokens(toks.Item(i, j), o.VocabSize); err != nil {
					return nil, fmt.Errorf("%s: row %d caption %d: %w", name, row, j, err)
				}
			}
			id := fmt.Sprintf("row-%d", row)
			if hasID {
				id = ids[i]
			}
			for _, k := range keys {
				d := out[k]
				img := int32(len(d.ImageIDs))
				d.ImageIDs = append(d.ImageIDs, id)
				if o.Mapped {
					b, ok := block[k]
					if !ok {
						b = d.Pixels.AddBlock(pix.Values)
						block[k] = b
					}
					d.Pixels.AddRow(b, i)
				} else {
					d.Pixels.Append(append([]byte(nil), pix.Row(i)...))
				}
				for j, c := range caps[i] {
					d.Captions = append(d.Captions, c)
					d.Tokens = append(d.Tokens, toks.Item(i, j)...)
					d.PairImage = append(d.PairImage, img)
				}
			}
		}
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func checkTokens(ids []int32, vocab int) error {
	for k, id := range ids {
		if id < 0 || (vocab > 0 && int(id) >= vocab) {
			return fmt.Errorf("token %d at position %d is outside the model's vocabulary (size %d); tokenize with this model", id, k, vocab)
		}
	}
	return nil
}

// ModelReadOptions are the ReadOptions that check rows against the model in
// dir: its image size, context length and vocabulary, and its preprocessor
// geometry for decoding image paths (CLIP's defaults at the model's size
// when dir has no preprocessor_config.json, as the decode stage does).
func ModelReadOptions(dir string) (ReadOptions, error) {
	mc, err := model.LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return ReadOptions{}, err
	}
	pre, err := imageproc.ForModel(dir, mc.Vision.ImageSize)
	if err != nil {
		return ReadOptions{}, err
	}
	return ReadOptions{Side: mc.Vision.ImageSize, MaxContext: mc.Text.MaxPositionEmbeddings,
		VocabSize: mc.Text.VocabSize, Geometry: pre.Geometry}, nil
}
