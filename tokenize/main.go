// Command tokenize adds token ids (CLIP's BPE or SigLIP's SentencePiece) to
// a clipline stream, and learns BPE vocabularies from a stream's captions.
//
//	tokenize --model DIR [--context 77] [--in FILE] [--out FILE] [--compress zstd]
//	tokenize learn --captions-from FILE [--captions-from FILE2] --vocab-size N --out DIR
package main

import (
	"io"

	"github.com/clipline/clipline/internal/cli"
	"github.com/clipline/clipline/internal/hub"
	"github.com/clipline/clipline/internal/shard"
	"github.com/clipline/clipline/internal/stream"
	"github.com/clipline/clipline/internal/texttok"
	"github.com/clipline/clipline/internal/tokenize"
)

const description = `Tokenize captions with the model's tokenizer: CLIP's byte-level BPE, or
SigLIP's SentencePiece when the model directory has spiece.model.

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
from a stream's captions.

A model directory with spiece.model (a SigLIP checkpoint such as
google/siglip-base-patch16-224) is tokenized as transformers'
SiglipProcessor(text, padding="max_length", truncation=True) does: the text
lowercased, ASCII punctuation removed, whitespace runs collapsed and the
ends stripped, then encoded by the SentencePiece unigram model (the same
ids as the sentencepiece library), </s> appended, truncated with </s> kept
last, and padded with the pad token (</s>) to the context, by default
text_config.max_position_embeddings (64 for SigLIP; 64 without a
config.json). tokenizer_config.json's do_lower_case and eos/unk/pad tokens
are honoured when present.`

type commands struct {
	Run   runCmd   `cmd:"" default:"withargs" hidden:"" help:"Add caption_tokens to a stream (the default command)."`
	Learn learnCmd `cmd:"" help:"Learn a byte-level BPE vocabulary (vocab.json, merges.txt) from a stream's captions."`
}

type runCmd struct {
	Model    string `required:"" placeholder:"DIR|ID" help:"Model directory with spiece.model (SigLIP) or vocab.json and merges.txt (CLIP), or a Hugging Face id (downloaded into the cache)."`
	Context  int    `default:"0" placeholder:"N" help:"Context length: tokens per caption row, start and end tokens included (default: the model's text_config.max_position_embeddings, else 77 for CLIP, 64 for SigLIP)."`
	In       string `default:"-" placeholder:"FILE" stdin:"an Arrow stream of rows with captions; pass --in FILE or pipe one: prepare ... | tokenize --model DIR" help:"Input: an Arrow stream, IPC file or directory of parts (- is stdin)."`
	Out      string `default:"-" placeholder:"FILE" help:"Output (- is stdout, a stream); FILE.arrow is written as an Arrow IPC file (random access), other names as a stream; a file appears only when complete."`
	Compress string `default:"none" enum:"none,zstd,lz4" placeholder:"NAME" help:"Compress the output buffers: none, zstd or lz4; readers detect it."`
	Workers  int    `default:"0" placeholder:"N" help:"Goroutines tokenizing captions; 0 for all cores."`

	shard.Flags `embed:""`
}

type learnCmd struct {
	CaptionsFrom []string `required:"" sep:"none" placeholder:"FILE" stdin:"an Arrow stream of rows with captions; pass --captions-from FILE or pipe one: prepare ... | tokenize learn --captions-from -" help:"Stream whose captions are the corpus (- is stdin); repeat the flag to learn from several."`
	VocabSize    int      `required:"" placeholder:"N" help:"Vocabulary size to reach: 512 byte symbols + merges + 2 special tokens (at least 514). Learning stops earlier when no pair is frequent enough."`
	MinFrequency int64    `default:"2" placeholder:"N" help:"Fewest occurrences a pair needs to become a merge."`
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
	return ctx.Run(&env{args: args, stdout: stdout, stderr: stderr})
}

// env is what commands need from the process.
type env struct {
	args   []string
	stdout io.Writer
	stderr io.Writer
}

func (r *runCmd) Run(e *env) error {
	dir, err := hub.Model(r.Model, e.stderr)
	if err != nil {
		return err
	}
	tok, err := texttok.Load(dir)
	if err != nil {
		return err
	}
	n, err := tokenize.Context(dir, tok, r.Context)
	if err != nil {
		return err
	}
	in, out, err := r.Open(r.In, r.Out, stream.Open)
	if err != nil {
		return err
	}
	defer in.Close()
	return tokenize.Run(in, tok, tokenize.Options{Context: n, Workers: r.Workers, Model: r.Model,
		Args: e.args, Out: out, Stdout: e.stdout, Compress: r.Compress, Log: e.stderr})
}

func (l *learnCmd) Run(e *env) error {
	return tokenize.Learn(l.CaptionsFrom, tokenize.LearnOptions{VocabSize: l.VocabSize,
		MinFrequency: l.MinFrequency, Split: l.Split, Out: l.Out, Log: e.stderr})
}
