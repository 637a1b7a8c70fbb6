package texttok

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/clipline/clipline/internal/parallel"
	"github.com/clipline/clipline/internal/spm"
)

// TokenizerConfigFile is transformers' tokenizer settings file.
const TokenizerConfigFile = "tokenizer_config.json"

// SiglipContextLength is SiglipTokenizer's model_max_length (and
// google/siglip-base-patch16-224's text max_position_embeddings).
const SiglipContextLength = 64

// Siglip is transformers' SiglipTokenizer (v4.47, the slow tokenizer that
// AutoTokenizer gives SigLIP checkpoints) as SiglipProcessor(text,
// padding="max_length", truncation=True) applies it:
//
//   - "▁" is prepended and any "▁" in the text becomes a space;
//   - the text is lowercased character by character (do_lower_case),
//     except the special tokens "</s>" and "<unk>", which are then split out
//     with the whitespace on both sides (AddedToken lstrip/rstrip);
//   - each other part is canonicalised (ASCII punctuation removed, runs of
//     whitespace made one space, stripped) and encoded by the SentencePiece
//     model without its dummy prefix, after "<unk>" whose pieces are then
//     dropped (as _tokenize does);
//   - a leading lone "▁" before a special token is dropped; "</s>" is
//     appended unless already last;
//   - the row is truncated to leave room for "</s>" and padded with the pad
//     token ("</s>" unless tokenizer_config.json says otherwise).
type Siglip struct {
	sp         *spm.Model // the model without its dummy prefix
	lower      bool
	special    []string // all_special_tokens: eos, unk (and pad when different)
	specialIDs []int32
	unkText    string
	unkLen     int
	eos, pad   int32
	space      int32 // the id of piece "▁", -1 if none
}

// LoadSiglip reads dir's spiece.model and, when present, its
// tokenizer_config.json (do_lower_case, eos_token, unk_token, pad_token).
func LoadSiglip(dir string) (*Siglip, error) {
	sp, err := spm.Load(filepath.Join(dir, spm.File))
	if err != nil {
		return nil, err
	}
	cfg := tokenizerConfig{Lower: true, EOS: "</s>", UNK: "<unk>", Pad: "</s>"}
	path := filepath.Join(dir, TokenizerConfigFile)
	if err := cfg.read(path); err != nil {
		return nil, err
	}
	return NewSiglip(sp, cfg.Lower, cfg.EOS, cfg.UNK, cfg.Pad)
}

// NewSiglip is the SigLIP tokenizer over sp with the given special tokens,
// which must be pieces of sp.
func NewSiglip(sp *spm.Model, lower bool, eos, unk, pad string) (*Siglip, error) {
	s := &Siglip{sp: sp.WithoutDummyPrefix(), lower: lower, unkText: unk}
	for _, tok := range []struct {
		name, text string
		id         *int32
	}{{"eos_token", eos, &s.eos}, {"pad_token", pad, &s.pad}, {"unk_token", unk, nil}} {
		id := sp.PieceToID(tok.text)
		if id == sp.UnknownID() && tok.text != sp.Piece(sp.UnknownID()) {
			return nil, fmt.Errorf("%s %q is not a piece of the SentencePiece model", tok.name, tok.text)
		}
		if tok.id != nil {
			*tok.id = id
		}
	}
	for _, t := range []string{eos, unk, pad} {
		if !contains(s.special, t) {
			s.special = append(s.special, t)
			s.specialIDs = append(s.specialIDs, sp.PieceToID(t))
		}
	}
	s.unkLen = len(s.sp.Encode(unk))
	s.space = -1
	if id := sp.PieceToID("\u2581"); sp.Piece(id) == "\u2581" {
		s.space = id
	}
	return s, nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// tokenizerConfig is what Siglip reads from tokenizer_config.json. The
// tokens may be strings or AddedToken objects ({"content": ...}).
type tokenizerConfig struct {
	Lower          bool
	EOS, UNK, Pad  string
	ModelMaxLength int
}

func (c *tokenizerConfig) read(path string) error {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var f struct {
		Lower *bool           `json:"do_lower_case"`
		EOS   json.RawMessage `json:"eos_token"`
		UNK   json.RawMessage `json:"unk_token"`
		Pad   json.RawMessage `json:"pad_token"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if f.Lower != nil {
		c.Lower = *f.Lower
	}
	for _, t := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{{"eos_token", f.EOS, &c.EOS}, {"unk_token", f.UNK, &c.UNK}, {"pad_token", f.Pad, &c.Pad}} {
		if len(t.raw) == 0 || string(t.raw) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(t.raw, &s) != nil {
			var obj struct {
				Content string `json:"content"`
			}
			if err := json.Unmarshal(t.raw, &obj); err != nil || obj.Content == "" {
				return fmt.Errorf("%s: %s is neither a string nor {\"content\": ...}", path, t.name)
			}
			s = obj.Content
		}
		*t.dst = s
	}
	return nil
}

// VocabSize is the number of pieces.
func (s *Siglip) VocabSize() int { return s.sp.Size() }

// File is spiece.model.
func (s *Siglip) File() string { return spm.File }

// DefaultContextLength is 64, SiglipTokenizer's model_max_length.
func (s *Siglip) DefaultContextLength() int { return SiglipContextLength }

// EOS and Pad are the end and padding ids.
func (s *Siglip) EOS() int32 { return s.eos }

// Pad is the padding id.
func (s *Siglip) Pad() int32 { return s.pad }

// Encode is SiglipTokenizer.encode(text) without special tokens added:
// the ids of text's tokens.
func (s *Siglip) Encode(text string) []int32 { return s.appendEncode(nil, text) }

func (s *Siglip) appendEncode(dst []int32, text string) []int32 {
	text = "\u2581" + strings.ReplaceAll(text, "\u2581", " ")
	if s.lower {
		text = s.lowerOutsideSpecial(text)
	}
	parts := s.splitSpecial(text)
	n0 := len(dst)
	firstSpecial := false // whether the second token is a special one
	for _, p := range parts {
		if p.text == "" {
			continue
		}
		if p.special >= 0 {
			if len(dst)-n0 == 1 {
				firstSpecial = true
			}
			dst = append(dst, s.specialIDs[p.special])
			continue
		}
		dst = s.appendPart(dst, p.text)
	}
	// SiglipTokenizer.tokenize drops a leading lone "▁" before a special token.
	if firstSpecial && len(dst)-n0 > 1 && dst[n0] == s.space && s.space >= 0 {
		dst = append(dst[:n0], dst[n0+1:]...)
	}
	return dst
}

// appendPart is SiglipTokenizer._tokenize of one part between special tokens.
func (s *Siglip) appendPart(dst []int32, text string) []int32 {
	text = canonicalize(text)
	n0 := len(dst)
	dst = s.sp.AppendEncode(dst, s.unkText+text)
	if len(dst)-n0 >= s.unkLen {
		dst = append(dst[:n0], dst[n0+s.unkLen:]...)
	}
	return dst
}

type part struct {
	text    string
	special int // index into s.special, or -1
}

// splitSpecial is tokens_trie.split over the special tokens with their
// lstrip/rstrip: whitespace next to a special token is removed.
func (s *Siglip) splitSpecial(text string) []part {
	var parts []part
	last := 0
	for i := 0; i < len(text); {
		k := s.specialAt(text[i:])
		if k < 0 {
			i++
			continue
		}
		parts = append(parts, part{text[last:i], -1}, part{s.special[k], k})
		i += len(s.special[k])
		last = i
	}
	parts = append(parts, part{text[last:], -1})
	for i, p := range parts {
		if p.special < 0 {
			continue
		}
		if i+1 < len(parts) && parts[i+1].special < 0 {
			parts[i+1].text = strings.TrimLeftFunc(parts[i+1].text, pyIsSpace)
		}
		if i > 0 && parts[i-1].special < 0 {
			parts[i-1].text = strings.TrimRightFunc(parts[i-1].text, pyIsSpace)
		}
	}
	return parts
}

// specialAt is the index of the special token text starts with, or -1.
func (s *Siglip) specialAt(text string) int {
	for k, t := range s.special {
		if strings.HasPrefix(text, t) {
			return k
		}
	}
	return -1
}

// lowerOutsideSpecial lowercases text one character at a time as Python's
// str.lower does, leaving the special tokens as they are.
func (s *Siglip) lowerOutsideSpecial(text string) string {
	var b strings.Builder
	b.Grow(len(text))
	for i := 0; i < len(text); {
		if k := s.specialAt(text[i:]); k >= 0 {
			b.WriteString(s.special[k])
			i += len(s.special[k])
			continue
		}
		r, n := utf8.DecodeRuneInString(text[i:])
		switch {
		case r == '\u0130': // İ: Python's full lowercase mapping is two characters
			b.WriteString("i\u0307")
		case r == utf8.RuneError && n == 1:
			b.WriteByte(text[i])
		default:
			b.WriteRune(unicode.ToLower(r))
		}
		i += n
	}
	return b.String()
}

// canonicalize is SiglipTokenizer.canonicalize_text: string.punctuation
// removed, runs of whitespace (Python's \s) made one space, stripped.
func canonicalize(text string) string {
	var b strings.Builder
	b.Grow(len(text))
	inSpace := false
	for _, r := range text {
		switch {
		case r < 0x80 && strings.IndexByte(asciiPunctuation, byte(r)) >= 0:
			continue
		case pyIsSpace(r):
			inSpace = true
			continue
		}
		if inSpace {
			b.WriteByte(' ')
			inSpace = false
		}
		b.WriteRune(r)
	}
	out := b.String()
	if inSpace && out != "" {
		out += " "
	}
	return strings.TrimFunc(out, pyIsSpace)
}

// asciiPunctuation is Python's string.punctuation.
const asciiPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

// pyIsSpace is Python's str.isspace for one character: Go's unicode.IsSpace
// plus the information separators U+001C..U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// TokenizeInto writes text's row: its ids truncated to leave room for
// "</s>", "</s>" (unless the ids already end with it), then padding. It
// returns the untruncated row's length.
func (s *Siglip) TokenizeInto(dst []int32, text string) int {
	if len(dst) < 1 {
		panic("texttok: TokenizeInto needs room for the end token")
	}
	ids := s.appendEncode(dst[:0:0], text)
	full := len(ids)
	if full == 0 || ids[full-1] != s.eos {
		full++
	}
	if len(ids)+1 > len(dst) {
		ids = ids[:len(dst)-1]
	}
	n := copy(dst, ids)
	if n == 0 || dst[n-1] != s.eos {
		dst[n] = s.eos
		n++
	}
	for i := n; i < len(dst); i++ {
		dst[i] = s.pad
	}
	return full
}

// Tokenize returns text's row for the context length.
func (s *Siglip) Tokenize(text string, contextLength int) []int32 {
	row := make([]int32, contextLength)
	s.TokenizeInto(row, text)
	return row
}

// TokenizeAll writes texts' rows to dst (contextLength each, dst holding
// len(texts)*contextLength) on workers goroutines, rows in order, and
// returns how many were truncated.
func (s *Siglip) TokenizeAll(dst []int32, texts []string, contextLength, workers int) (truncated int) {
	if contextLength < 1 || len(dst) < len(texts)*contextLength {
		panic("texttok: TokenizeAll needs contextLength >= 1 and room for every row")
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	const chunk = 64
	chunks := (len(texts) + chunk - 1) / chunk
	counts := make([]int, chunks)
	parallel.Tasks(workers, chunks, func(c, _ int) {
		for i := c * chunk; i < min((c+1)*chunk, len(texts)); i++ {
			if s.TokenizeInto(dst[i*contextLength:(i+1)*contextLength], texts[i]) > contextLength {
				counts[c]++
			}
		}
	})
	for _, n := range counts {
		truncated += n
	}
	return truncated
}
