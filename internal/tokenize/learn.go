package tokenize

import (
	"fmt"
	"io"
	"strings"

	"github.com/clipline/clipline/internal/bpe"
	"github.com/clipline/clipline/internal/stream"
)

// LearnOptions configure Learn.
type LearnOptions struct {
	VocabSize    int       // tokens to reach, specials included
	MinFrequency int64     // fewest occurrences a pair needs to become a merge
	Split        string    // when set, only rows of this split count
	Out          string    // directory for vocab.json and merges.txt
	Log          io.Writer // receives the summary line; nil for silence
}

// Learn learns a byte-level BPE vocabulary from the captions of the streams
// at paths ("-" is stdin) and saves it in o.Out.
func Learn(paths []string, o LearnOptions) error {
	if o.VocabSize < bpe.BaseVocabSize {
		return fmt.Errorf("--vocab-size %d: need at least %d (256 bytes, their </w> forms, 2 special tokens)", o.VocabSize, bpe.BaseVocabSize)
	}
	learner := bpe.NewLearner()
	learner.MinFrequency = o.MinFrequency
	var captions int64
	for _, path := range paths {
		n, err := Captions(path, o.Split, learner.Add)
		if err != nil {
			return err
		}
		captions += n
	}
	if captions == 0 {
		return fmt.Errorf("%s: no captions to learn from", strings.Join(paths, ", "))
	}
	v, err := learner.Learn(o.VocabSize)
	if err != nil {
		return err
	}
	if err := v.Save(o.Out); err != nil {
		return err
	}
	if o.Log != nil {
		note := ""
		if len(v.Tokens) < o.VocabSize {
			note = fmt.Sprintf(" (stopped early: no pair occurs %d times)", o.MinFrequency)
		}
		fmt.Fprintf(o.Log, "tokenize learn: %d captions -> %d tokens, %d merges in %s%s\n",
			captions, len(v.Tokens), len(v.Merges), o.Out, note)
	}
	return nil
}

// Captions calls add with each caption of the stream at path ("-" is
// stdin), of rows of split only when split is set, and returns how many
// there were: the corpus of Learn, and of scripts/captions (which writes
// it out for SentencePiece's spm_train).
func Captions(path, split string, add func(string)) (int64, error) {
	in, err := stream.Open(path)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	if err := in.Require(stream.ColCaptions); err != nil {
		return 0, err
	}
	if split != "" {
		if err := in.Require(stream.ColSplit); err != nil {
			return 0, fmt.Errorf("--split %s: %w", split, err)
		}
	}
	var captions int64
	for in.Next() {
		rec := in.Batch()
		// Copied: Learn keeps words of the captions as map keys.
		lists, err := stream.StringLists(rec, stream.ColCaptions)
		if err != nil {
			return 0, in.Errorf("batch %d: %w", in.BatchIndex(), err)
		}
		var splits []string
		if split != "" {
			if splits, err = stream.Strings(rec, stream.ColSplit); err != nil {
				return 0, in.Errorf("batch %d: %w", in.BatchIndex(), err)
			}
		}
		for i, caps := range lists {
			if splits != nil && splits[i] != split {
				continue
			}
			for _, c := range caps {
				add(c)
				captions++
			}
		}
	}
	return captions, in.Err()
}
