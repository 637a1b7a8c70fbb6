package bpe

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/clipline/clipline/internal/sharedtest"
)

var (
	clipOnce sync.Once
	clipTok  *Tokenizer
	clipErr  error
)

// clipTokenizer loads the real CLIP vocabulary from ../shared/clip.
func clipTokenizer(t testing.TB) (*Tokenizer, string) {
	t.Helper()
	dir := sharedtest.Dir(t, "clip")
	clipOnce.Do(func() { clipTok, clipErr = Load(dir) })
	if clipErr != nil {
		t.Fatal(clipErr)
	}
	return clipTok, dir
}

// TestGolden checks every text of tokenizer_golden.jsonl against the ids
// OpenAI's reference tokenizer gives it.
func TestGolden(t *testing.T) {
	tok, dir := clipTokenizer(t)
	if tok.StartID() != 49406 || tok.EndID() != 49407 || tok.VocabSize() != 49408 {
		t.Fatalf("special ids %d %d, vocab %d; want 49406 49407, 49408", tok.StartID(), tok.EndID(), tok.VocabSize())
	}
	checkGoldenFile(t, tok, filepath.Join(dir, "tokenizer_golden.jsonl"))
}

// TestEdgeGolden checks texts chosen where Python's semantics differ from
// Go's standard library (entities, strip, lowercasing, the pattern's
// IGNORECASE quirks) against simple_tokenizer.py run without ftfy
// (testdata/bpe/simple_tokenizer_ref.py wrote the file).
func TestEdgeGolden(t *testing.T) {
	tok, _ := clipTokenizer(t)
	checkGoldenFile(t, tok, filepath.Join("..", "..", "testdata", "bpe", "edge_golden.jsonl"))
}

func checkGoldenFile(t *testing.T, tok *Tokenizer, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for line := 1; sc.Scan(); line++ {
		var g struct {
			Text string  `json:"text"`
			IDs  []int32 `json:"ids"`
		}
		if err := json.Unmarshal(sc.Bytes(), &g); err != nil {
			t.Fatalf("%s:%d: %v", path, line, err)
		}
		got := tok.Tokenize(g.Text, len(g.IDs))
		if !slices.Equal(got, g.IDs) {
			t.Errorf("%s:%d %q:\n got %v\nwant %v", path, line, g.Text, got, g.IDs)
		}
		// The cached path must agree with the first (uncached) one.
		if again := tok.Tokenize(g.Text, len(g.IDs)); !slices.Equal(again, got) {
			t.Errorf("%s:%d: second call differs: %v", path, line, again)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("%s has no lines", path)
	}
	t.Logf("%d golden lines match", n)
}
