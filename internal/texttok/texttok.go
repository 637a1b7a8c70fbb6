// Package texttok is the one place that picks a model directory's text
// tokenizer: SigLIP's SentencePiece model (spiece.model, through
// transformers' SiglipTokenizer semantics, see Siglip) when the directory
// has one, else CLIP's byte-level BPE (vocab.json + merges.txt,
// internal/bpe). The tokenize stage, train's data preparation, embed and
// clip.Load (serve's text queries) all load through Load.
package texttok

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/clipline/clipline/internal/bpe"
	"github.com/clipline/clipline/internal/spm"
)

// Tokenizer turns texts into fixed-length rows of ids, as the model's
// reference processor does with padding to the row length.
type Tokenizer interface {
	// VocabSize is the number of ids (the model's vocab_size must hold them).
	VocabSize() int
	// File names the vocabulary file, for messages.
	File() string
	// DefaultContextLength is the row length without a config.json (77 for
	// CLIP, 64 for SigLIP).
	DefaultContextLength() int
	// TokenizeInto writes text's row for a context of len(dst) ids and
	// returns the length the row would have untruncated.
	TokenizeInto(dst []int32, text string) int
	// Tokenize returns text's row for the context length.
	Tokenize(text string, contextLength int) []int32
	// TokenizeAll writes texts' rows to dst (contextLength each) on workers
	// goroutines (0: GOMAXPROCS), returning how many were truncated.
	TokenizeAll(dst []int32, texts []string, contextLength, workers int) (truncated int)
}

// IsSentencePiece reports whether dir's tokenizer is SentencePiece (it
// has spiece.model).
func IsSentencePiece(dir string) bool { return exists(filepath.Join(dir, spm.File)) }

// Files are the paths of the files Load reads from dir, for cache keys:
// spiece.model and tokenizer_config.json when it exists, or vocab.json and
// merges.txt.
func Files(dir string) []string {
	if IsSentencePiece(dir) {
		files := []string{filepath.Join(dir, spm.File)}
		if cfg := filepath.Join(dir, TokenizerConfigFile); exists(cfg) {
			files = append(files, cfg)
		}
		return files
	}
	return []string{filepath.Join(dir, bpe.VocabFile), filepath.Join(dir, bpe.MergesFile)}
}

// Has reports whether dir holds a tokenizer: spiece.model or vocab.json.
func Has(dir string) bool {
	return IsSentencePiece(dir) || exists(filepath.Join(dir, bpe.VocabFile))
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Load returns dir's tokenizer: Siglip over spiece.model when dir has it,
// else CLIP's BPE from vocab.json and merges.txt.
func Load(dir string) (Tokenizer, error) {
	if IsSentencePiece(dir) {
		return LoadSiglip(dir)
	}
	t, err := bpe.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("%w (a model directory needs %s or %s and %s)", err, spm.File, bpe.VocabFile, bpe.MergesFile)
	}
	return t, nil
}
