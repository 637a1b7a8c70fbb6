// Command tokenize adds CLIP BPE token ids to a clipline stream, and learns
// BPE vocabularies from a stream's captions.
//
//	tokenize --model DIR [--context 77] [--in FILE] [--out FILE] [--compress zstd]
//	tokenize learn --captions-from FILE [--captions-from FILE2] --vocab-size N --out DIR
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/clipline/clipline/internal/bpe"
	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/stream"
)

const description = `Tokenize captions with CLIP's byte-level BPE.

  tokenize --model DIR [--context 77] [--in FILE] [--out FILE] [--compress zstd]
  tokenize learn --captions-from FILE [--captions-from FILE2] --vocab-size N --out DIR

Reads an Arrow IPC stream (stdin by default) whose rows have a captions column
(list<utf8>), and writes it (stdout by default) with caption_tokens added:
list<fixed_size_list<int32>[context]>, one row of ids per caption, in the
captions' order. Each row is <|startoftext|>, the ids, <|endoftext|>, then 0
padding; a caption too long is truncated with <|endoftext|> kept last. Text is
cleaned as OpenAI's CLIP tokenizer does it (HTML entities, whitespace,
lowercase; ftfy's fixes are not applied). Other columns pass through
unchanged; the schema metadata gains clipline.context_length, clipline.model
and a provenance entry. Captions are tokenized on all cores, in order.

The vocabulary is vocab.json + merges.txt in --model (Hugging Face layout,
e.g. a CLIP checkpoint directory). "tokenize learn" learns such a vocabulary
from a stream's captions.`

type commands struct {
	Run   runCmd   `cmd:"" default:"withargs" help:"Add caption_tokens to a stream (the default command)."`
	Learn learnCmd `cmd:"" help:"Learn a byte-level BPE vocabulary (vocab.json, merges.txt) from a stream's captions."`
}

type runCmd struct {
	Model    string `required:"" type:"existingdir" placeholder:"DIR" help:"Model directory with vocab.json and merges.txt."`
	Context  int    `default:"0" help:"Context length: tokens per caption row, start and end tokens included (default: the model's text_config.max_position_embeddings, else 77)."`
	In       string `default:"-" placeholder:"FILE" help:"Input stream (- is stdin)."`
	Out      string `default:"-" placeholder:"FILE" help:"Output stream (- is stdout); a file appears only when complete."`
	Compress string `default:"none" enum:"none,zstd,lz4" help:"Compress the output buffers (none, zstd, lz4); readers detect it."`
	Workers  int    `default:"0" help:"Goroutines tokenizing captions (0: all cores)."`
}

type learnCmd struct {
	CaptionsFrom []string `required:"" sep:"none" placeholder:"FILE" help:"Stream whose captions are the corpus (- is stdin); repeat the flag to learn from several."`
	VocabSize    int      `required:"" placeholder:"N" help:"Vocabulary size to reach: 512 byte symbols + merges + 2 special tokens (at least 514). Learning stops earlier when no pair is frequent enough."`
	MinFrequency int64    `default:"2" help:"Fewest occurrences a pair needs to become a merge."`
	Split        string   `placeholder:"NAME" help:"Learn only from rows whose split column is NAME (e.g. train)."`
	Out          string   `required:"" placeholder:"DIR" help:"Directory to write vocab.json and merges.txt into (created if needed)."`
}

func main() { cli.Main("tokenize", run) }

// run parses args and runs the chosen command; logs go to stderr.
func run(args []string, stdout, stderr io.Writer) error {
	var c commands
	ctx, err := cli.Parse("tokenize", description, &c, args, stdout, stderr)
	if ctx == nil {
		return err
	}
	return ctx.Run(&env{args: args, stderr: stderr})
}

// env is what commands need from the process.
type env struct {
	args   []string
	stderr io.Writer
}

func (r *runCmd) Run(e *env) error {
	tok, err := bpe.Load(r.Model)
	if err != nil {
		return err
	}
	maxPos, err := checkModel(r.Model, tok)
	if err != nil {
		return err
	}
	if r.Context == 0 {
		r.Context = bpe.DefaultContextLength
		if maxPos > 0 {
			r.Context = maxPos
		}
	}
	if r.Context < 2 {
		return fmt.Errorf("--context %d: need at least 2 (start and end tokens)", r.Context)
	}
	if maxPos > 0 && r.Context > maxPos {
		return fmt.Errorf("--context %d exceeds the model's text_config.max_position_embeddings %d (%s)", r.Context, maxPos, filepath.Join(r.Model, "config.json"))
	}
	in, err := stream.Open(r.In)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := in.Require(stream.ColCaptions); err != nil {
		return err
	}

	start := time.Now()
	var captions, truncated int64
	spec := stream.TransformSpec{
		Stage:   "tokenize",
		Args:    e.args,
		Out:     r.Out,
		Options: stream.Options{Compress: r.Compress},
		Fields:  []arrow.Field{stream.CaptionTokensField(r.Context)},
		Meta: map[string]string{
			stream.MetaContextLength: strconv.Itoa(r.Context),
			stream.MetaModel:         r.Model,
		},
		Fn: func(rec arrow.RecordBatch, firstRow int64) ([]arrow.Array, []bool, error) {
			col, n, trunc, err := tokenizeBatch(tok, rec, firstRow, r.Context, r.Workers)
			if err != nil {
				return nil, nil, err
			}
			captions += int64(n)
			truncated += int64(trunc)
			return []arrow.Array{col}, nil, nil
		},
	}
	st, err := stream.Transform(in, spec)
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	fmt.Fprintf(e.stderr, "tokenize: %d rows, %d captions (%d truncated to %d tokens) in %.2fs (%.0f captions/s)\n",
		st.RowsOut, captions, truncated, r.Context, secs, float64(captions)/max(secs, 1e-9))
	return nil
}

// tokenizeBatch builds the caption_tokens column of one batch. Caption
// strings are read in place from the Arrow buffers (valid while rec is).
func tokenizeBatch(tok *bpe.Tokenizer, rec arrow.RecordBatch, firstRow int64, ctx, workers int) (arrow.Array, int, int, error) {
	col, err := stream.Column(rec, stream.ColCaptions)
	if err != nil {
		return nil, 0, 0, err
	}
	list, ok := col.(*array.List)
	if !ok {
		return nil, 0, 0, fmt.Errorf("column %s has type %s, want list<utf8>", stream.ColCaptions, col.DataType())
	}
	vals, ok := list.ListValues().(*array.String)
	if !ok {
		return nil, 0, 0, fmt.Errorf("column %s has type %s, want list<utf8>", stream.ColCaptions, col.DataType())
	}
	rows := list.Len()
	offsets := make([]int32, rows+1)
	var texts []string
	for i := range rows {
		if list.IsNull(i) {
			return nil, 0, 0, fmt.Errorf("row %d: column %s is null", firstRow+int64(i), stream.ColCaptions)
		}
		s, e := list.ValueOffsets(i)
		for j := s; j < e; j++ {
			if vals.IsNull(int(j)) {
				return nil, 0, 0, fmt.Errorf("row %d: caption %d is null", firstRow+int64(i), j-s)
			}
			texts = append(texts, vals.Value(int(j)))
		}
		offsets[i+1] = int32(len(texts))
	}
	// A fresh buffer per batch: the column wraps it without copying and the
	// writer may hold it after this batch.
	ids := make([]int32, len(texts)*ctx)
	trunc := tok.TokenizeAll(ids, texts, ctx, workers)
	return stream.NewCaptionTokens(stream.Tokens{Width: ctx, Values: ids, Offsets: offsets}), len(texts), trunc, nil
}

// checkModel compares the tokenizer with the model's config.json, when the
// directory has one, so ids outside the text embedding fail here rather than
// in train or embed; it returns the model's number of text positions (0 when
// unknown), which bounds the context length.
func checkModel(dir string, tok *bpe.Tokenizer) (int, error) {
	path := filepath.Join(dir, "config.json")
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var cfg struct {
		TextConfig struct {
			VocabSize             int `json:"vocab_size"`
			MaxPositionEmbeddings int `json:"max_position_embeddings"`
		} `json:"text_config"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	tc := cfg.TextConfig
	if tc.VocabSize > 0 && tok.VocabSize() > tc.VocabSize {
		return 0, fmt.Errorf("%s: text_config.vocab_size is %d but %s has %d tokens", path, tc.VocabSize, bpe.VocabFile, tok.VocabSize())
	}
	return tc.MaxPositionEmbeddings, nil
}

func (l *learnCmd) Run(e *env) error {
	if l.VocabSize < bpe.BaseVocabSize {
		return fmt.Errorf("--vocab-size %d: need at least %d (256 bytes, their </w> forms, 2 special tokens)", l.VocabSize, bpe.BaseVocabSize)
	}
	learner := bpe.NewLearner()
	learner.MinFrequency = l.MinFrequency
	var captions int64
	for _, path := range l.CaptionsFrom {
		n, err := l.addCaptions(learner, path)
		if err != nil {
			return err
		}
		captions += n
	}
	if captions == 0 {
		return fmt.Errorf("%s: no captions to learn from", strings.Join(l.CaptionsFrom, ", "))
	}
	v, err := learner.Learn(l.VocabSize)
	if err != nil {
		return err
	}
	if err := v.Save(l.Out); err != nil {
		return err
	}
	note := ""
	if len(v.Tokens) < l.VocabSize {
		note = fmt.Sprintf(" (stopped early: no pair occurs %d times)", l.MinFrequency)
	}
	fmt.Fprintf(e.stderr, "tokenize learn: %d captions -> %d tokens, %d merges in %s%s\n",
		captions, len(v.Tokens), len(v.Merges), l.Out, note)
	return nil
}

// addCaptions feeds the captions of one stream (of the chosen split) to the
// learner and returns how many there were.
func (l *learnCmd) addCaptions(learner *bpe.Learner, path string) (int64, error) {
	in, err := stream.Open(path)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	if err := in.Require(stream.ColCaptions); err != nil {
		return 0, err
	}
	if l.Split != "" {
		if err := in.Require(stream.ColSplit); err != nil {
			return 0, fmt.Errorf("--split %s: %w", l.Split, err)
		}
	}
	var captions int64
	for in.Next() {
		rec := in.Batch()
		lists, err := stream.StringLists(rec, stream.ColCaptions)
		if err != nil {
			return 0, in.Errorf("batch %d: %w", in.BatchIndex(), err)
		}
		var splits []string
		if l.Split != "" {
			if splits, err = stream.Strings(rec, stream.ColSplit); err != nil {
				return 0, in.Errorf("batch %d: %w", in.BatchIndex(), err)
			}
		}
		for i, caps := range lists {
			if splits != nil && splits[i] != l.Split {
				continue
			}
			for _, c := range caps {
				learner.Add(c)
				captions++
			}
		}
	}
	return captions, in.Err()
}
