package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clipline/clipline/internal/bpe"
	"github.com/clipline/clipline/internal/embed/embedtest"
	"github.com/clipline/clipline/internal/shard"
	"github.com/clipline/clipline/internal/shard/shardtest"
)

// TestShard: the parts of N = 1, 3, 7 equal the unsharded output byte for
// byte, though --batch-size 3 packs other rows into a forward pass in each
// part than in the unsharded run.
func TestShard(t *testing.T) {
	texts := []string{"a red square", "two blue circles on grass", "a dog", "the cat sits on a mat"}
	model := embedtest.ModelWithVocab(t, texts)
	tok, err := bpe.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	const side, context = 32, 77
	rng := rand.New(rand.NewPCG(1, 2))
	s := embedtest.Stream{Side: side, Context: context, BatchRows: 2}
	for i := range 17 {
		r := embedtest.Row{ID: fmt.Sprint("img", i), Note: fmt.Sprint("note ", i), Pixels: make([]uint8, side*side*3)}
		for j := range r.Pixels {
			r.Pixels[j] = uint8(rng.UintN(256))
		}
		for j := range i % 3 { // 0, 1 or 2 captions
			c := texts[(i+j)%len(texts)]
			r.Captions, r.Tokens = append(r.Captions, c), append(r.Tokens, tok.Tokenize(c, context))
		}
		s.Rows = append(s.Rows, r)
	}
	dir := t.TempDir()
	in, whole := filepath.Join(dir, "in.arrow"), filepath.Join(dir, "whole.arrow")
	s.Write(t, in)
	embed := func(t *testing.T, args ...string) {
		t.Helper()
		var stderr bytes.Buffer
		args = append([]string{"--model", model, "--batch-size", "3"}, args...)
		if err := run(args, io.Discard, &stderr); err != nil {
			t.Fatalf("embed %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
	}
	embed(t, "--in", in, "--out", whole)
	shardtest.Check(t, whole, func(t *testing.T, part shard.Spec, out string) {
		embed(t, "--in", in, "--shard", part.String(), "--out", out)
	})
}
