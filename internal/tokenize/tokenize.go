// Package tokenize is the tokenize stage's work: the caption_tokens column of
// a stream (Run), the context length a model directory allows (Context),
// and learning a BPE vocabulary from streams' captions (Learn). The
// tokenizers are internal/bpe (CLIP) and internal/spm (SigLIP's
// SentencePiece), picked by internal/texttok.
package tokenize

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/clipline/clipline/internal/model"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/texttok"
)

// Context checks tok against the config.json of the model directory dir,
// when it has one, so that ids outside the text embedding fail here rather
// than in train or embed, and returns the context length: n, or when n is
// 0 the model's text_config.max_position_embeddings (without a
// config.json the tokenizer's default: 77 for CLIP, 64 for SigLIP). A
// context above the model's positions is refused.
func Context(dir string, tok texttok.Tokenizer, n int) (int, error) {
	path := filepath.Join(dir, "config.json")
	maxPos := 0 // unknown: no config.json
	mc, err := model.LoadConfig(path)
	switch {
	case err == nil:
		tc := mc.Text
		if tok.VocabSize() > tc.VocabSize {
			return 0, fmt.Errorf("%s: text_config.vocab_size is %d but %s has %d tokens", path, tc.VocabSize, tok.File(), tok.VocabSize())
		}
		maxPos = tc.MaxPositionEmbeddings
	case !errors.Is(err, fs.ErrNotExist):
		return 0, err
	}
	if n == 0 {
		n = tok.DefaultContextLength()
		if maxPos > 0 {
			n = maxPos
		}
	}
	if n < 2 {
		return 0, fmt.Errorf("--context %d: need at least 2 (start and end tokens)", n)
	}
	if maxPos > 0 && n > maxPos {
		return 0, fmt.Errorf("--context %d exceeds the model's text_config.max_position_embeddings %d (%s)", n, maxPos, path)
	}
	return n, nil
}

// Options configure Run.
type Options struct {
	Context  int       // ids per caption row (see Context)
	Workers  int       // goroutines tokenizing (0: all cores)
	Model    string    // recorded as clipline.model (the --model argument)
	Args     []string  // recorded in provenance
	Out      string    // output path; "" or "-" is Stdout
	Stdout   io.Writer // the stage's stdout
	Compress string    // "", "none", "zstd" or "lz4"
	Log      io.Writer // receives the summary line; nil for silence
}

// Run writes in with caption_tokens added: each caption's ids, context
// length o.Context, in the captions' order. Other columns pass through.
func Run(in *stream.Reader, tok texttok.Tokenizer, o Options) error {
	if err := in.Require(stream.ColCaptions); err != nil {
		return err
	}
	start := time.Now()
	var captions, truncated int64
	spec := stream.TransformSpec{
		Stage:   "tokenize",
		Args:    o.Args,
		Out:     o.Out,
		Options: stream.Options{Compress: o.Compress, Stdout: o.Stdout},
		Fields:  []arrow.Field{stream.CaptionTokensField(o.Context)},
		Meta: map[string]string{
			stream.MetaContextLength: strconv.Itoa(o.Context),
			stream.MetaModel:         o.Model,
		},
		Fn: func(rec arrow.RecordBatch, _ int64) ([]arrow.Array, []bool, error) {
			texts, offsets, err := stream.FlatStringLists(rec, stream.ColCaptions)
			if err != nil {
				// Its rows count from the batch's start, so name the batch.
				return nil, nil, fmt.Errorf("batch %d: %w", in.BatchIndex(), err)
			}
			// A fresh buffer per batch: the column wraps it without copying
			// and the writer may hold it after this batch.
			ids := make([]int32, len(texts)*o.Context)
			truncated += int64(tok.TokenizeAll(ids, texts, o.Context, o.Workers))
			captions += int64(len(texts))
			col := stream.NewCaptionTokens(stream.Tokens{Width: o.Context, Values: ids, Offsets: offsets})
			return []arrow.Array{col}, nil, nil
		},
	}
	st, err := stream.Transform(in, spec)
	if err != nil {
		return err
	}
	if o.Log != nil {
		secs := time.Since(start).Seconds()
		fmt.Fprintf(o.Log, "tokenize: %d rows, %d captions (%d truncated to %d tokens) in %.2fs (%.0f captions/s)\n",
			st.RowsOut, captions, truncated, o.Context, secs, float64(captions)/max(secs, 1e-9))
	}
	return nil
}
