// Package index builds and opens search index bundles: a directory that
// holds one embedded stream's vectors, L2-normalised and packed as the
// search kernel reads them (memory-mapped by Open, not copied), the rows
// they belong to (meta.arrow, an Arrow IPC file), and a manifest saying what
// they are and which model made them. The index stage writes bundles; serve
// and the clip package open them.
//
//	DIR/manifest.json   Manifest
//	DIR/meta.arrow      one row per indexed item, in index order
//	DIR/vectors.panels  the vectors, raw little-endian float32 in search.Pack's layout
//	DIR/faiss.index     optional: the same vectors as a FAISS IndexFlatIP
//	DIR/report.json     optional: the fine-tune's report, copied
package index

import (
	"encoding/json"
	"time"
)

// Bundle file names.
const (
	ManifestFile = "manifest.json"
	MetaFile     = "meta.arrow"
	VectorsFile  = "vectors.panels"
	FaissFile    = "faiss.index"
	ReportFile   = "report.json"
)

// FormatVersion is the bundle layout this package writes and reads.
const FormatVersion = 1

// Kinds of index: what one row (one vector) is.
const (
	KindImages   = "images"   // one row per image: image_embedding
	KindCaptions = "captions" // one row per caption: caption_embeddings
)

// MetricCosine is the only metric: dot products of unit vectors.
const MetricCosine = "cosine"

// ColCaption is a captions index's one caption per row (utf8).
const ColCaption = "caption"

// Manifest is manifest.json: what the bundle holds.
type Manifest struct {
	Format     int    `json:"format"` // FormatVersion
	Kind       string `json:"kind"`   // KindImages or KindCaptions
	Dim        int    `json:"dim"`
	Count      int    `json:"count"`       // rows (vectors)
	Metric     string `json:"metric"`      // MetricCosine
	PanelWidth int    `json:"panel_width"` // vectors.panels' panel width
	Model      Model  `json:"model"`
	// Provenance is the input stream's steps (stream.Step) and index's own.
	Provenance json.RawMessage `json:"provenance"`
	Created    time.Time       `json:"created"`
}

// Model identifies the model that embedded the indexed vectors.
type Model struct {
	Hash   string `json:"hash"`   // modelid.Hash of its directory (clipline.model_hash)
	Source string `json:"source"` // the path or hub id embed was given (clipline.model)
}

// Item is one row of a bundle. An images index fills Captions (the image's
// captions, when the stream had them); a captions index fills Caption.
type Item struct {
	Row                                int32
	ImageID, ImagePath, Split, Caption string
	Captions                           []string
}
