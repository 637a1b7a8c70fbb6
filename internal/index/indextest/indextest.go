// Package indextest makes real embedded streams for the tests of index and
// serve: synthetic scenes through tokenize, decode and embed with the
// bundled base model, in process (the stages' own Run functions), so a test
// indexes exactly what `prepare synthetic | tokenize | decode | embed`
// writes.
package indextest

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/clipline/clipline/internal/backend/cpu"
	"github.com/clipline/clipline/internal/dataset"
	"github.com/clipline/clipline/internal/decode"
	"github.com/clipline/clipline/internal/embed"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/stream/streamtest"
	"github.com/clipline/clipline/internal/synthetic"
	"github.com/clipline/clipline/internal/texttok"
	"github.com/clipline/clipline/internal/tokenize"
)

// BaseModel is testdata/base-model, the model the streams are embedded with.
func BaseModel() string {
	_, file, _, _ := runtime.Caller(0)
	// file is <repo>/internal/index/indextest/indextest.go
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "testdata", "base-model")
}

// Stream writes the embedded stream of n synthetic scenes (seed 3, a fifth
// each in val and test) under dir, images in dir/images, and returns its
// path; t fails on any error.
func Stream(t testing.TB, dir string, n int) string {
	t.Helper()
	path, err := Make(dir, n)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Make is Stream for callers without a test (a TestMain sharing one stream).
// The model is recorded as BaseModel's path (clipline.model), as embed's
// --model argument would be.
func Make(dir string, n int) (string, error) {
	model := BaseModel()
	rows, _, err := synthetic.Generate(synthetic.Config{Seed: 3, Images: n, Domain: synthetic.Scenes,
		ImageDir: filepath.Join(dir, "images"), ValFrac: 0.2, TestFrac: 0.2, Workers: 2})
	if err != nil {
		return "", err
	}
	prep := filepath.Join(dir, "prep.arrow")
	if err := dataset.Write(rows, dataset.WriteOptions{Out: prep, Args: []string{"synthetic"}}); err != nil {
		return "", err
	}
	tok, err := texttok.Load(model)
	if err != nil {
		return "", err
	}
	ctx, err := tokenize.Context(model, tok, 0)
	if err != nil {
		return "", err
	}
	geom, err := decode.Geometry(model, 0)
	if err != nil {
		return "", err
	}
	e, err := embed.Load(model, cpu.New(), embed.Options{})
	if err != nil {
		return "", err
	}
	defer e.Close()
	steps := []func(in *stream.Reader, out string) error{
		func(in *stream.Reader, out string) error {
			return tokenize.Run(in, tok, tokenize.Options{Context: ctx, Model: model, Out: out})
		},
		func(in *stream.Reader, out string) error {
			return decode.Run(in, decode.Options{Geometry: geom, Model: model, Out: out})
		},
		func(in *stream.Reader, out string) error {
			_, err := e.Run(in, embed.RunOptions{Out: out, Model: model, Args: []string{"--model", model}})
			return err
		},
	}
	cur := prep
	for i, step := range steps {
		out := filepath.Join(dir, fmt.Sprintf("step%d.arrow", i))
		in, err := stream.Open(cur)
		if err != nil {
			return "", err
		}
		err = step(in, out)
		in.Close()
		if err != nil {
			return "", err
		}
		cur = out
	}
	return cur, nil
}

// Row is one row of a hand-made embedded stream (Write).
type Row struct {
	ID, Path, Split string
	Captions        []string
	Image           []float32   // image_embedding
	CaptionVecs     [][]float32 // caption_embeddings, one per caption
	Bytes           []byte      // image_bytes, written when any row has some
}

// TestModelHash is what Write records as clipline.model_hash.
const TestModelHash = "sha256:test"

// Write writes rows as an embedded stream with vectors of dimension dim,
// in batches of batch rows, its metadata naming model "test-model" with
// TestModelHash; meta adds or replaces keys ("" values remove them).
func Write(t testing.TB, path string, dim, batch int, rows []Row, meta map[string]string) {
	t.Helper()
	md := map[string]string{stream.MetaModel: "test-model", stream.MetaModelHash: TestModelHash}
	for k, v := range meta {
		md[k] = v
	}
	var keys, vals []string
	for k, v := range md {
		if v != "" {
			keys, vals = append(keys, k), append(vals, v)
		}
	}
	amd := arrow.NewMetadata(keys, vals)
	fields := []arrow.Field{stream.ImageIDField(), stream.ImagePathField(),
		stream.SplitField(), stream.CaptionsField(), stream.ImageEmbeddingField(dim), stream.CaptionEmbeddingsField(dim),
		{Name: "note", Type: arrow.BinaryTypes.String}}
	withBytes := slices.ContainsFunc(rows, func(r Row) bool { return len(r.Bytes) > 0 })
	if withBytes {
		fields = append(fields, stream.ImageBytesField())
	}
	schema := stream.WithProvenance(arrow.NewSchema(fields, &amd), "test", nil)
	var recs []arrow.RecordBatch
	for at := 0; at < len(rows); at += batch {
		part := rows[at:min(at+batch, len(rows))]
		var ids, paths, splits, notes []string
		var caps [][]string
		var blobs [][]byte
		img := stream.Vectors{Width: dim}
		cemb := stream.VectorLists{Width: dim, Offsets: []int32{0}}
		for i, r := range part {
			ids, paths, splits = append(ids, r.ID), append(paths, r.Path), append(splits, r.Split)
			notes = append(notes, fmt.Sprintf("note %d", at+i))
			caps = append(caps, r.Captions)
			blobs = append(blobs, r.Bytes)
			img.Values = append(img.Values, r.Image...)
			for _, v := range r.CaptionVecs {
				cemb.Values = append(cemb.Values, v...)
			}
			cemb.Offsets = append(cemb.Offsets, int32(len(cemb.Values)/dim))
		}
		cols := []arrow.Array{stream.NewStrings(ids), stream.NewStrings(paths), stream.NewStrings(splits),
			stream.NewStringLists(caps), stream.NewImageEmbeddings(img), stream.NewCaptionEmbeddings(cemb), stream.NewStrings(notes)}
		if withBytes {
			cols = append(cols, stream.NewBinaries(blobs))
		}
		recs = append(recs, array.NewRecordBatch(schema, cols, int64(len(part))))
		for _, c := range cols {
			c.Release()
		}
	}
	streamtest.WriteFile(t, path, schema, stream.Options{BatchRows: batch}, recs...)
	for _, r := range recs {
		r.Release()
	}
}
