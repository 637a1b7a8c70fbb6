// Package embedtest holds test helpers shared by the embed stage, the
// internal/embed package and the public clip package: the golden tiny model
// and its reference tensors, a copy of that model with a learned vocabulary,
// and a writer of small clipline streams.
package embedtest

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/bpe"
	"github.com/clipline/clipline/internal/model"
	"github.com/clipline/clipline/internal/safetensors"
	"github.com/clipline/clipline/internal/sharedtest"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/stream/streamtest"
)

// GoldenModel is ../shared/golden/tiny-clip/model (the test skips without it).
func GoldenModel(t testing.TB) string {
	t.Helper()
	return sharedtest.Dir(t, "golden", "tiny-clip", "model")
}

// Reference holds the inputs and outputs of reference.safetensors: N images
// of Side x Side (uint8 HWC), N token rows of Context ids, and the raw
// (unnormalised) projections PyTorch's CLIP gives them.
type Reference struct {
	N, Side, Context, Dim int
	Pixels                []uint8
	IDs                   []int32
	ImageEmbeds           []float32
	TextEmbeds            []float32
}

// LoadReference reads ../shared/golden/tiny-clip/reference.safetensors.
func LoadReference(t testing.TB) Reference {
	t.Helper()
	f, err := safetensors.Load(filepath.Join(sharedtest.Dir(t, "golden", "tiny-clip"), "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string) safetensors.Tensor {
		tt, ok := f.Tensors[name]
		if !ok {
			t.Fatalf("reference tensor %s missing", name)
		}
		return tt
	}
	var r Reference
	px := get("pixels_u8")
	r.N, r.Side = px.Shape[0], px.Shape[1]
	r.Pixels = px.Data
	ids := get("input_ids")
	r.Context = ids.Shape[1]
	raw, err := ids.Int64()
	if err != nil {
		t.Fatal(err)
	}
	r.IDs = make([]int32, len(raw))
	for i, v := range raw {
		r.IDs[i] = int32(v)
	}
	if r.ImageEmbeds, err = get("image_embeds").Float32(); err != nil {
		t.Fatal(err)
	}
	if r.TextEmbeds, err = get("text_embeds").Float32(); err != nil {
		t.Fatal(err)
	}
	r.Dim = get("image_embeds").Shape[1]
	return r
}

// Normalized returns a copy of x [n, dim] with each row's first cut values
// L2-normalised in float64 (cut 0: all of them).
func Normalized(x []float32, dim, cut int) []float32 {
	if cut == 0 {
		cut = dim
	}
	n := len(x) / dim
	out := make([]float32, n*cut)
	for i := range n {
		v := x[i*dim : i*dim+cut]
		var ss float64
		for _, a := range v {
			ss += float64(a) * float64(a)
		}
		for k, a := range v {
			out[i*cut+k] = float32(float64(a) / math.Sqrt(ss))
		}
	}
	return out
}

// MaxAbsDiff is the largest |a[i]-b[i]|; lengths must match.
func MaxAbsDiff(t testing.TB, a, b []float32) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("lengths %d and %d differ", len(a), len(b))
	}
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// ModelWithVocab makes a temporary model directory with a BPE vocabulary
// learned from texts (at most 600 tokens) and a tiny random model for it
// (see AddTinyModel). Needs nothing from ../shared.
func ModelWithVocab(t testing.TB, texts []string) string {
	t.Helper()
	dir := t.TempDir()
	v, err := bpe.Learn(texts, 600)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Save(dir); err != nil {
		t.Fatal(err)
	}
	AddTinyModel(t, dir)
	return dir
}

// AddTinyModel writes a randomly initialised model (seed 1) of TinyConfig's
// architecture (the golden tiny model's: image 32, context 77, D 32) into
// dir, which holds a vocabulary (vocab.json, merges.txt): its vocab_size is
// the vocabulary's size, so <|endoftext|>, the last token, is the largest id
// as CLIP's pooling needs. (The golden model itself has 512 token embeddings,
// fewer than the 514 byte and special tokens every byte-level BPE vocabulary
// starts with, so it cannot take a learned vocabulary.) It also writes CLIP's
// preprocessor_config.json at 32 pixels.
func AddTinyModel(t testing.TB, dir string) {
	t.Helper()
	v, err := bpe.ReadVocab(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := model.TinyConfig()
	cfg.Text.VocabSize = len(v.Tokens)
	m, err := model.New(cfg, cpu.New(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "preprocessor_config.json"), []byte(preprocessor32), 0o644); err != nil {
		t.Fatal(err)
	}
}

// preprocessor32 is Hugging Face's CLIPImageProcessor configuration at 32
// pixels (as in the golden tiny model).
const preprocessor32 = `{
  "image_processor_type": "CLIPImageProcessor",
  "do_resize": true,
  "size": {"shortest_edge": 32},
  "resample": 3,
  "do_center_crop": true,
  "crop_size": {"height": 32, "width": 32},
  "do_rescale": true,
  "rescale_factor": 0.00392156862745098,
  "do_normalize": true,
  "image_mean": [0.48145466, 0.4578275, 0.40821073],
  "image_std": [0.26862954, 0.26130258, 0.27577711],
  "do_convert_rgb": true
}
`

// Row is one row of a test stream.
type Row struct {
	ID       string
	Captions []string  // one per token row when the stream has tokens
	Pixels   []uint8   // Side*Side*3 bytes when the stream has pixels
	Tokens   [][]int32 // rows of Context ids
	Note     string    // a user column that stages must pass through
	Split    string    // written as the split column when any row has one
	Path     string    // written as image_path when any row has one
	Bytes    []byte    // written as image_bytes when any row has some
}

// Stream describes a test stream. Side 0 leaves out pixels, Context 0 leaves
// out caption_tokens; BatchRows is the record batch size (0: the default).
// Meta is added to the schema metadata (image_size and context_length are set
// from Side and Context unless Meta gives them).
type Stream struct {
	Side, Context int
	BatchRows     int
	Meta          map[string]string
	Rows          []Row
}

// Write writes s to path.
func (s Stream) Write(t testing.TB, path string) {
	t.Helper()
	note := arrow.Field{Name: "note", Type: arrow.BinaryTypes.String, Nullable: true}
	fields := []arrow.Field{stream.ImageIDField(), note, stream.CaptionsField()}
	var ids, notes, splits, paths []string
	var caps [][]string
	var blobs [][]byte
	withSplit, withPath, withBytes := false, false, false
	pix := stream.PixelRows{Width: s.Side * s.Side * 3}
	tok := stream.Tokens{Width: s.Context, Offsets: []int32{0}}
	for _, r := range s.Rows {
		ids, notes, caps = append(ids, r.ID), append(notes, r.Note), append(caps, r.Captions)
		splits = append(splits, r.Split)
		withSplit = withSplit || r.Split != ""
		paths, blobs = append(paths, r.Path), append(blobs, r.Bytes)
		withPath, withBytes = withPath || r.Path != "", withBytes || len(r.Bytes) > 0
		pix.Values = append(pix.Values, r.Pixels...)
		for _, row := range r.Tokens {
			tok.Values = append(tok.Values, row...)
		}
		tok.Offsets = append(tok.Offsets, tok.Offsets[len(tok.Offsets)-1]+int32(len(r.Tokens)))
	}
	cols := []arrow.Array{stream.NewStrings(ids), stream.NewStrings(notes), stream.NewStringLists(caps)}
	meta := map[string]string{}
	if withSplit {
		fields = append(fields, stream.SplitField())
		cols = append(cols, stream.NewStrings(splits))
	}
	if withPath {
		fields = append(fields, stream.ImagePathField())
		cols = append(cols, stream.NewStrings(paths))
	}
	if withBytes {
		fields = append(fields, stream.ImageBytesField())
		cols = append(cols, stream.NewBinaries(blobs))
	}
	if s.Side > 0 {
		fields = append(fields, stream.PixelsField(s.Side))
		cols = append(cols, stream.NewPixels(pix))
		meta[stream.MetaImageSize] = strconv.Itoa(s.Side)
	}
	if s.Context > 0 {
		fields = append(fields, stream.CaptionTokensField(s.Context))
		cols = append(cols, stream.NewCaptionTokens(tok))
		meta[stream.MetaContextLength] = strconv.Itoa(s.Context)
	}
	for k, v := range s.Meta {
		meta[k] = v
	}
	schema := arrow.NewSchema(fields, nil)
	for k, v := range meta {
		schema = stream.WithMeta(schema, k, v)
	}
	schema = stream.WithProvenance(schema, "test", []string{"x"})
	rec := array.NewRecordBatch(schema, cols, int64(len(s.Rows)))
	for _, c := range cols {
		c.Release()
	}
	defer rec.Release()
	streamtest.WriteFile(t, path, schema, stream.Options{BatchRows: s.BatchRows}, rec)
}

// Output is what a test reads back from an embedded stream.
type Output struct {
	Schema   *arrow.Schema
	IDs      []string
	Notes    []string
	Splits   []string
	Captions [][]string
	Images   stream.Vectors     // Width 0 when absent
	Caps     stream.VectorLists // Width 0 when absent
	Batches  int
}

// Read reads an embedded stream, concatenating its batches.
func Read(t testing.TB, path string) Output {
	t.Helper()
	in, err := stream.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	o := Output{Schema: in.Schema(), Caps: stream.VectorLists{Offsets: []int32{0}}}
	for in.Next() {
		rec := in.Batch()
		o.Batches++
		ids, err := stream.Strings(rec, stream.ColImageID)
		if err != nil {
			t.Fatal(err)
		}
		o.IDs = append(o.IDs, ids...)
		if stream.HasColumn(o.Schema, "note") {
			notes, err := stream.Strings(rec, "note")
			if err != nil {
				t.Fatal(err)
			}
			o.Notes = append(o.Notes, notes...)
		}
		if stream.HasColumn(o.Schema, stream.ColSplit) {
			splits, err := stream.Strings(rec, stream.ColSplit)
			if err != nil {
				t.Fatal(err)
			}
			o.Splits = append(o.Splits, splits...)
		}
		if stream.HasColumn(o.Schema, stream.ColCaptions) {
			caps, err := stream.StringLists(rec, stream.ColCaptions)
			if err != nil {
				t.Fatal(err)
			}
			o.Captions = append(o.Captions, caps...)
		}
		if stream.HasColumn(o.Schema, stream.ColImageEmbedding) {
			v, err := stream.ImageEmbeddings(rec)
			if err != nil {
				t.Fatal(err)
			}
			o.Images.Width = v.Width
			o.Images.Values = append(o.Images.Values, v.Values...)
		}
		if stream.HasColumn(o.Schema, stream.ColCaptionEmbeddings) {
			v, err := stream.CaptionEmbeddings(rec)
			if err != nil {
				t.Fatal(err)
			}
			o.Caps.Width = v.Width
			o.Caps.Values = append(o.Caps.Values, v.Values...)
			base := o.Caps.Offsets[len(o.Caps.Offsets)-1]
			for _, off := range v.Offsets[1:] {
				o.Caps.Offsets = append(o.Caps.Offsets, base+off)
			}
		}
	}
	if err := in.Err(); err != nil {
		t.Fatal(err)
	}
	return o
}
