package stream

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/clipline/clipline/internal/cli"
)

// Column names of the clipline stream contract.
const (
	ColImageID           = "image_id"           // utf8: stable id of the image
	ColSplit             = "split"              // utf8: train, val, test, ...
	ColImagePath         = "image_path"         // utf8: path of the image file
	ColImageBytes        = "image_bytes"        // binary: the encoded image file (JPEG, PNG, WebP, ...)
	ColCaptions          = "captions"           // list<utf8>: captions of the image
	ColCaptionTokens     = "caption_tokens"     // list<fixed_size_list<int32>[context]>, aligned with captions
	ColPixels            = "pixels"             // fixed_size_list<uint8>[size*size*3], HWC RGB
	ColImageEmbedding    = "image_embedding"    // fixed_size_list<float32>[dim]
	ColCaptionEmbeddings = "caption_embeddings" // list<fixed_size_list<float32>[dim]>, aligned with captions
)

// Schema metadata keys.
const (
	MetaProvenance    = "clipline.provenance"     // JSON list of Step, one per stage that ran
	MetaImageSize     = "clipline.image_size"     // decimal side of the square pixels, e.g. "224"
	MetaContextLength = "clipline.context_length" // decimal token context, e.g. "77"
	MetaEmbeddingDim  = "clipline.embedding_dim"  // decimal embedding width
	MetaModel         = "clipline.model"          // model directory or id used by tokenize/decode/embed
	MetaModelHash     = "clipline.model_hash"     // embed's model, by content: modelid.Hash
)

func utf8Field(name string) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.BinaryTypes.String}
}

// ImageIDField is the image_id column (utf8).
func ImageIDField() arrow.Field { return utf8Field(ColImageID) }

// SplitField is the split column (utf8).
func SplitField() arrow.Field { return utf8Field(ColSplit) }

// ImagePathField is the image_path column (utf8).
func ImagePathField() arrow.Field { return utf8Field(ColImagePath) }

// ImageBytesField is the image_bytes column (binary): the image file's
// bytes as stored, so a stream is self-contained without image_path's files.
func ImageBytesField() arrow.Field {
	return arrow.Field{Name: ColImageBytes, Type: arrow.BinaryTypes.Binary}
}

// CaptionsField is the captions column (list<utf8>).
func CaptionsField() arrow.Field {
	return arrow.Field{Name: ColCaptions, Type: arrow.ListOf(arrow.BinaryTypes.String)}
}

// CaptionTokensType is list<fixed_size_list<int32>[context]>.
func CaptionTokensType(context int) arrow.DataType {
	return arrow.ListOf(arrow.FixedSizeListOf(int32(context), arrow.PrimitiveTypes.Int32))
}

// CaptionTokensField is the caption_tokens column for the given context length.
func CaptionTokensField(context int) arrow.Field {
	return arrow.Field{Name: ColCaptionTokens, Type: CaptionTokensType(context)}
}

// PixelsType is fixed_size_list<uint8>[size*size*3] (square HWC RGB images).
func PixelsType(size int) arrow.DataType {
	return arrow.FixedSizeListOf(int32(size*size*3), arrow.PrimitiveTypes.Uint8)
}

// PixelsField is the pixels column for square images of the given side.
func PixelsField(size int) arrow.Field { return arrow.Field{Name: ColPixels, Type: PixelsType(size)} }

// ImageEmbeddingType is fixed_size_list<float32>[dim].
func ImageEmbeddingType(dim int) arrow.DataType {
	return arrow.FixedSizeListOf(int32(dim), arrow.PrimitiveTypes.Float32)
}

// ImageEmbeddingField is the image_embedding column.
func ImageEmbeddingField(dim int) arrow.Field {
	return arrow.Field{Name: ColImageEmbedding, Type: ImageEmbeddingType(dim)}
}

// CaptionEmbeddingsType is list<fixed_size_list<float32>[dim]>.
func CaptionEmbeddingsType(dim int) arrow.DataType { return arrow.ListOf(ImageEmbeddingType(dim)) }

// CaptionEmbeddingsField is the caption_embeddings column.
func CaptionEmbeddingsField(dim int) arrow.Field {
	return arrow.Field{Name: ColCaptionEmbeddings, Type: CaptionEmbeddingsType(dim)}
}

// SetFields returns schema with each of fields replacing the same-named field,
// or appended when absent. Metadata and all other fields are kept, in order.
func SetFields(schema *arrow.Schema, fields ...arrow.Field) *arrow.Schema {
	out := slices.Clone(schema.Fields())
	for _, f := range fields {
		if i := fieldIndex(out, f.Name); i >= 0 {
			out[i] = f
		} else {
			out = append(out, f)
		}
	}
	md := schema.Metadata()
	return arrow.NewSchema(out, &md)
}

// DropFields returns schema without the named fields (metadata kept).
func DropFields(schema *arrow.Schema, names ...string) *arrow.Schema {
	var out []arrow.Field
	for _, f := range schema.Fields() {
		if !slices.Contains(names, f.Name) {
			out = append(out, f)
		}
	}
	md := schema.Metadata()
	return arrow.NewSchema(out, &md)
}

func fieldIndex(fields []arrow.Field, name string) int {
	for i, f := range fields {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// Meta returns the schema metadata value for key.
func Meta(schema *arrow.Schema, key string) (string, bool) {
	md := schema.Metadata()
	if i := md.FindKey(key); i >= 0 {
		return md.Values()[i], true
	}
	return "", false
}

// MetaInt returns an integer metadata value; ok is false when the key is absent.
func MetaInt(schema *arrow.Schema, key string) (v int, ok bool, err error) {
	s, ok := Meta(schema, key)
	if !ok {
		return 0, false, nil
	}
	v, err = strconv.Atoi(s)
	if err != nil {
		return 0, true, fmt.Errorf("schema metadata %s=%q is not an integer", key, s)
	}
	return v, true, nil
}

// WithMeta returns schema with key set to value (replacing an earlier value).
func WithMeta(schema *arrow.Schema, key, value string) *arrow.Schema {
	md := schema.Metadata()
	keys, vals := slices.Clone(md.Keys()), slices.Clone(md.Values())
	if i := md.FindKey(key); i >= 0 {
		vals[i] = value
	} else {
		keys, vals = append(keys, key), append(vals, value)
	}
	nmd := arrow.NewMetadata(keys, vals)
	return arrow.NewSchema(schema.Fields(), &nmd)
}

// Step is one provenance entry: a stage that produced the stream.
type Step struct {
	Stage   string   `json:"stage"`
	Args    []string `json:"args"`
	Version string   `json:"version,omitempty"` // cli.Version: what the stage's --version prints
}

// Provenance returns the stages recorded in the schema metadata, oldest first.
func Provenance(schema *arrow.Schema) ([]Step, error) {
	s, ok := Meta(schema, MetaProvenance)
	if !ok {
		return nil, nil
	}
	var steps []Step
	if err := json.Unmarshal([]byte(s), &steps); err != nil {
		return nil, fmt.Errorf("schema metadata %s is not a JSON list of steps: %w", MetaProvenance, err)
	}
	return steps, nil
}

// WithProvenance returns schema with a step for stage (and its arguments)
// appended to the provenance list. An unreadable earlier list is kept as the
// single argument of a step named "unparsed" rather than silently dropped.
func WithProvenance(schema *arrow.Schema, stage string, args []string) *arrow.Schema {
	steps, err := Provenance(schema)
	if err != nil {
		old, _ := Meta(schema, MetaProvenance)
		steps = []Step{{Stage: "unparsed", Args: []string{old}}}
	}
	if args == nil {
		args = []string{}
	}
	steps = append(steps, Step{Stage: stage, Args: args, Version: cli.Version()})
	b, _ := json.Marshal(steps) // cannot fail: strings only
	return WithMeta(schema, MetaProvenance, string(b))
}
