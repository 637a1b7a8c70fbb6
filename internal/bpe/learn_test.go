package bpe

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// learnedDir learns a vocabulary from Flickr-like captions and saves it.
func learnedDir(t *testing.T, vocabSize int) (string, []string) {
	t.Helper()
	texts := flickrLike(3000, 7)
	v, err := Learn(texts, vocabSize)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := v.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir, texts
}

func TestLearnLayout(t *testing.T) {
	dir, _ := learnedDir(t, 700)
	v, err := ReadVocab(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Tokens) != 700 || len(v.Merges) != 700-BaseVocabSize {
		t.Fatalf("%d tokens, %d merges; want 700 and %d", len(v.Tokens), len(v.Merges), 700-BaseVocabSize)
	}
	// CLIP's order: bytes_to_unicode symbols, their </w> forms, merges, specials.
	if v.Tokens[0] != "!" || v.Tokens[255] != "\u0143" || v.Tokens[256] != "!</w>" || v.Tokens[511] != "\u0143</w>" {
		t.Errorf("byte symbols out of CLIP's order: %q %q %q %q", v.Tokens[0], v.Tokens[255], v.Tokens[256], v.Tokens[511])
	}
	for i, m := range v.Merges {
		if got := v.Tokens[512+i]; got != m[0]+m[1] {
			t.Fatalf("token %d is %q, want merge %d's result %q", 512+i, got, i, m[0]+m[1])
		}
	}
	if v.Tokens[698] != StartToken || v.Tokens[699] != EndToken {
		t.Errorf("last tokens %q %q", v.Tokens[698], v.Tokens[699])
	}
	f, err := os.Open(filepath.Join(dir, MergesFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() || sc.Text() != "#version: 0.2" {
		t.Errorf("merges.txt first line %q, want the version header", sc.Text())
	}
}

func TestLearnRoundTrip(t *testing.T) {
	dir, texts := learnedDir(t, 800)
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 800 || tok.StartID() != 798 || tok.EndID() != 799 {
		t.Fatalf("vocab %d, start %d, end %d", tok.VocabSize(), tok.StartID(), tok.EndID())
	}
	// Texts never seen in training, with characters outside the corpus.
	extra := []string{"Zebras &amp; giraffes: 12 of them!", "naïve café résumé", "红色运动鞋 😀", "it's   a\ttest"}
	for _, text := range append(texts[:200:200], extra...) {
		ids := tok.Encode(text)
		got, err := tok.Decode(ids)
		if err != nil {
			t.Fatal(err)
		}
		// Pre-tokenization splits punctuation from words, and decoding puts
		// a space at every word end, so compare without spaces; for texts of
		// words and spaces only, compare exactly.
		want := Clean(text)
		if strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(want, " ", "") {
			t.Errorf("decode(encode(%q)) = %q, want %q", text, got, want)
		}
		words := strings.Join(strings.FieldsFunc(want, func(r rune) bool { return !('a' <= r && r <= 'z') }), " ")
		if got, _ := tok.Decode(tok.Encode(words)); got != words {
			t.Errorf("decode(encode(%q)) = %q", words, got)
		}
		// A padded row decodes to the same text.
		row := tok.Tokenize(text, 77)
		if back, _ := tok.Decode(row); len(ids) <= 75 && back != got {
			t.Errorf("decode(row of %q) = %q, want %q", text, back, got)
		}
	}
	// Frequent words become single tokens.
	for _, w := range []string{"a", "the", "man", "is", "in", "dog", "walking", "park", "street", "playing"} {
		ids := tok.Encode(w)
		if len(ids) != 1 || tok.Token(ids[0]) != w+"</w>" {
			t.Errorf("%q encodes to %v, want the single token %q", w, ids, w+"</w>")
		}
	}
}

// TestLearnByHand checks merges computed by hand, tie-breaking and the stop
// at MinFrequency.
func TestLearnByHand(t *testing.T) {
	v, err := Learn([]string{"ab ab ab ac"}, 600)
	if err != nil {
		t.Fatal(err)
	}
	// Pairs: (a, b</w>) 3 times, (a, c</w>) once; only the first reaches 2.
	if want := [][2]string{{"a", "b</w>"}}; !slices.Equal(v.Merges, want) {
		t.Errorf("merges %q, want %q", v.Merges, want)
	}
	if len(v.Tokens) != BaseVocabSize+1 {
		t.Errorf("%d tokens, want %d", len(v.Tokens), BaseVocabSize+1)
	}

	l := NewLearner()
	l.MinFrequency = 1
	l.Add("cd ab cd ab xy")
	v, err = l.Learn(BaseVocabSize + 3)
	if err != nil {
		t.Fatal(err)
	}
	// (a,b</w>) and (c,d</w>) tie at 2 and sort by symbol; (x,y</w>) has 1.
	if want := [][2]string{{"a", "b</w>"}, {"c", "d</w>"}, {"x", "y</w>"}}; !slices.Equal(v.Merges, want) {
		t.Errorf("merges %q, want %q", v.Merges, want)
	}

	// A merge builds on earlier ones: "aaaa" -> (a,a) then (aa, a</w>)...
	v, err = Learn([]string{"aaaa aaaa"}, 600)
	if err != nil {
		t.Fatal(err)
	}
	// a a a a</w>: (a,a) occurs twice per word (positions 0-1, 1-2) -> 4;
	// after it: aa a a</w> -> (aa,a) 2, (a,a</w>) 2: sorted "a" < "aa".
	want := [][2]string{{"a", "a"}, {"a", "a</w>"}, {"aa", "aa</w>"}}
	if !slices.Equal(v.Merges, want) {
		t.Errorf("merges %q, want %q", v.Merges, want)
	}
	if _, err := Learn(nil, 100); err == nil {
		t.Error("vocab size below the base alphabet: no error")
	}
}

// TestTokenizeAll checks the parallel path against one-by-one rows, and that
// rows written into one flat buffer do not overwrite their neighbours.
func TestTokenizeAll(t *testing.T) {
	v, err := Learn(flickrLike(500, 3), 700)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := New(v)
	if err != nil {
		t.Fatal(err)
	}
	texts := flickrLike(1000, 4)
	texts[17] = strings.Repeat("a long caption ", 20) // truncated at ctx 16
	const ctx = 16
	dst := make([]int32, len(texts)*ctx)
	trunc := tok.TokenizeAll(dst, texts, ctx, 4)
	want := 0
	for i, text := range texts {
		row := tok.Tokenize(text, ctx)
		if !slices.Equal(dst[i*ctx:(i+1)*ctx], row) {
			t.Fatalf("row %d: %v, want %v", i, dst[i*ctx:(i+1)*ctx], row)
		}
		if len(tok.Encode(text))+2 > ctx {
			want++
		}
	}
	if trunc != want || want == 0 {
		t.Errorf("truncated %d, want %d (>0)", trunc, want)
	}
}
