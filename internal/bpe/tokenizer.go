// Package bpe is CLIP's byte-level BPE tokenizer, reproducing OpenAI's
// simple_tokenizer.py (and Hugging Face's CLIPTokenizer) id for id, plus a
// merge learner that writes vocabularies in the same two-file layout.
//
// Known differences from the reference: ftfy.fix_text is not applied;
// letters, numbers and case mappings come from Go's Unicode tables (15.0),
// so characters assigned in later Unicode versions may split differently
// than with a newer `regex` module; invalid UTF-8 becomes U+FFFD first.
package bpe

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/bytedance/sonic"
)

// File names of a vocabulary in a model directory (Hugging Face layout).
const (
	VocabFile  = "vocab.json"
	MergesFile = "merges.txt"
)

// DefaultContextLength is CLIP's text context.
const DefaultContextLength = 77

// endOfWord marks the last symbol of a word.
const endOfWord = "</w>"

// Vocab is a vocabulary in memory: Tokens[id] is the token string of id and
// Merges lists the merge rules by rank.
type Vocab struct {
	Tokens []string
	Merges [][2]string
}

// Tokenizer encodes text to CLIP token ids. It is safe for concurrent use.
type Tokenizer struct {
	tokens []string
	ids    map[string]int32

	byteSym    [256]int32 // id of each byte's symbol
	byteSymEnd [256]int32 // id of each byte's symbol + "</w>"
	merges     map[uint64]merge

	sot, eot int32
	cache    wordCache
}

type merge struct {
	rank int32
	id   int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// Load reads vocab.json and merges.txt from dir.
func Load(dir string) (*Tokenizer, error) {
	v, err := ReadVocab(dir)
	if err != nil {
		return nil, err
	}
	return New(v)
}

// ReadVocab reads vocab.json and merges.txt from dir without building a
// tokenizer.
func ReadVocab(dir string) (*Vocab, error) {
	vpath := filepath.Join(dir, VocabFile)
	raw, err := os.ReadFile(vpath)
	if err != nil {
		return nil, fmt.Errorf("bpe: %w", err)
	}
	var m map[string]int
	// sonic: the standard decoder takes most of the load time of CLIP's
	// 49408-entry vocabulary.
	if err := sonic.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("bpe: %s: %w", vpath, err)
	}
	tokens := make([]string, len(m))
	for tok, id := range m {
		if id < 0 || id >= len(m) {
			return nil, fmt.Errorf("bpe: %s: token %q has id %d outside 0..%d (ids must be dense)", vpath, tok, id, len(m)-1)
		}
		if tokens[id] != "" {
			return nil, fmt.Errorf("bpe: %s: id %d is given to both %q and %q", vpath, id, tokens[id], tok)
		}
		tokens[id] = tok
	}

	mpath := filepath.Join(dir, MergesFile)
	f, err := os.Open(mpath)
	if err != nil {
		return nil, fmt.Errorf("bpe: %w", err)
	}
	defer f.Close()
	var merges [][2]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if line == 1 && strings.HasPrefix(text, "#version") {
			continue
		}
		// Unlike CLIPTokenizer, no cap at CLIP's 48894 merges: a learned
		// vocabulary may have any number (CLIP's own file has exactly that).
		if strings.TrimSpace(text) == "" {
			continue
		}
		a, b, ok := strings.Cut(text, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("bpe: %s:%d: want two symbols separated by a space, got %q", mpath, line, text)
		}
		merges = append(merges, [2]string{a, b})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bpe: %s: %w", mpath, err)
	}
	return &Vocab{Tokens: tokens, Merges: merges}, nil
}

// New builds a tokenizer from a vocabulary. Every byte symbol (and its
// "</w>" form), every merge result and both special tokens must be in
// v.Tokens; merges whose parts are not tokens can never apply and are
// ignored.
func New(v *Vocab) (*Tokenizer, error) {
	t := &Tokenizer{
		tokens: v.Tokens,
		ids:    make(map[string]int32, len(v.Tokens)),
		merges: make(map[uint64]merge, len(v.Merges)),
	}
	for id, tok := range v.Tokens {
		if _, dup := t.ids[tok]; dup {
			return nil, fmt.Errorf("bpe: vocabulary has token %q twice", tok)
		}
		t.ids[tok] = int32(id)
	}
	enc := byteEncoder()
	for b := 0; b < 256; b++ {
		sym := string(enc[b])
		id, ok := t.ids[sym]
		idEnd, okEnd := t.ids[sym+endOfWord]
		if !ok || !okEnd {
			return nil, fmt.Errorf("bpe: vocabulary lacks byte symbol %q or %q (byte %d)", sym, sym+endOfWord, b)
		}
		t.byteSym[b], t.byteSymEnd[b] = id, idEnd
	}
	for rank, m := range v.Merges {
		a, okA := t.ids[m[0]]
		b, okB := t.ids[m[1]]
		if !okA || !okB {
			continue
		}
		res, ok := t.ids[m[0]+m[1]]
		if !ok {
			return nil, fmt.Errorf("bpe: merge %d %q %q: result %q is not in the vocabulary", rank+1, m[0], m[1], m[0]+m[1])
		}
		k := pairKey(a, b)
		// A repeated pair keeps its last rank, as the reference's
		// dict(zip(merges, range(len(merges)))) does.
		t.merges[k] = merge{rank: int32(rank), id: res}
	}
	var ok bool
	if t.sot, ok = t.ids[StartToken]; !ok {
		return nil, fmt.Errorf("bpe: vocabulary lacks %s", StartToken)
	}
	if t.eot, ok = t.ids[EndToken]; !ok {
		return nil, fmt.Errorf("bpe: vocabulary lacks %s", EndToken)
	}
	t.cache.init()
	return t, nil
}

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// File is vocab.json, the vocabulary file (for messages).
func (t *Tokenizer) File() string { return VocabFile }

// DefaultContextLength is CLIP's 77.
func (t *Tokenizer) DefaultContextLength() int { return DefaultContextLength }

// StartID is the id of <|startoftext|>.
func (t *Tokenizer) StartID() int32 { return t.sot }

// EndID is the id of <|endoftext|>.
func (t *Tokenizer) EndID() int32 { return t.eot }

// Token returns the token string of id ("" when out of range).
func (t *Tokenizer) Token(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// ID returns the id of a token string.
func (t *Tokenizer) ID(token string) (int32, bool) {
	id, ok := t.ids[token]
	return id, ok
}

// scratch buffers reused across calls (cleaned text).
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// AppendEncode appends the BPE ids of text to dst, without start or end
// tokens: simple_tokenizer's encode().
func (t *Tokenizer) AppendEncode(dst []int32, text string) []int32 {
	bp := bufPool.Get().(*[]byte)
	buf, ok := cleanASCII((*bp)[:0], text)
	var s string
	if ok {
		s = unsafeString(buf)
	} else {
		s = cleanSlow(text)
	}
	for i := 0; ; {
		start, end := nextWord(s, i)
		if start == len(s) {
			break
		}
		dst = t.appendWord(dst, s[start:end])
		i = end
	}
	*bp = buf
	bufPool.Put(bp)
	return dst
}

// Encode returns the BPE ids of text without start or end tokens.
func (t *Tokenizer) Encode(text string) []int32 { return t.AppendEncode(nil, text) }

// TokenizeInto writes text's row for a context of len(dst) tokens:
// <|startoftext|>, the ids, <|endoftext|>, then 0 padding. A text too long
// is truncated with <|endoftext|> kept in the last position, as clip.tokenize
// does with truncate=True. It returns the number of tokens the untruncated
// row would have (so callers can count truncations). len(dst) must be at
// least 2.
func (t *Tokenizer) TokenizeInto(dst []int32, text string) int {
	if len(dst) < 2 {
		panic("bpe: TokenizeInto needs room for the start and end tokens")
	}
	dst[0] = t.sot
	// Encode in place; the capacity limit makes append reallocate rather
	// than write past dst (which may be one row of a larger buffer).
	room := len(dst) - 2
	ids := t.AppendEncode(dst[1:1:1+room], text)
	n := len(ids) + 2
	if len(ids) > room {
		copy(dst[1:], ids[:room])
		dst[len(dst)-1] = t.eot
		return n
	}
	dst[1+len(ids)] = t.eot
	clear(dst[2+len(ids):])
	return n
}

// Tokenize returns text's row for the given context length.
func (t *Tokenizer) Tokenize(text string, contextLength int) []int32 {
	row := make([]int32, contextLength)
	t.TokenizeInto(row, text)
	return row
}

// appendWord appends the ids of one pre-token.
func (t *Tokenizer) appendWord(dst []int32, word string) []int32 {
	if ids, ok := t.cache.get(word); ok {
		return append(dst, ids...)
	}
	ids := t.bpe(word)
	t.cache.put(word, ids)
	return append(dst, ids...)
}

// bpe splits one pre-token into ids: bytes to symbols ("</w>" on the last),
// then, repeatedly, the adjacent pair of lowest merge rank is merged at
// every non-overlapping occurrence, left to right, until no pair has a rank.
func (t *Tokenizer) bpe(word string) []int32 {
	if word == StartToken {
		return []int32{t.sot}
	}
	if word == EndToken {
		return []int32{t.eot}
	}
	syms := make([]int32, len(word))
	for i := 0; i < len(word); i++ {
		syms[i] = t.byteSym[word[i]]
	}
	syms[len(syms)-1] = t.byteSymEnd[word[len(word)-1]]
	for len(syms) > 1 {
		best := merge{rank: -1}
		var bestA, bestB int32
		for i := 0; i+1 < len(syms); i++ {
			if m, ok := t.merges[pairKey(syms[i], syms[i+1])]; ok && (best.rank < 0 || m.rank < best.rank) {
				best, bestA, bestB = m, syms[i], syms[i+1]
			}
		}
		if best.rank < 0 {
			break
		}
		out := syms[:0]
		for i := 0; i < len(syms); {
			if i+1 < len(syms) && syms[i] == bestA && syms[i+1] == bestB {
				out = append(out, best.id)
				i += 2
			} else {
				out = append(out, syms[i])
				i++
			}
		}
		syms = out
	}
	return syms
}

// Decode turns ids back into text as Hugging Face's CLIPTokenizer.decode
// with skip_special_tokens does for a tokenized row: a leading start token
// is skipped and decoding stops at the first end token (so padding is
// ignored); token strings are joined, mapped back to bytes, "</w>" becomes a
// space, and the result is trimmed. Bytes that are not valid UTF-8 (a
// character cut by truncation) become U+FFFD.
func (t *Tokenizer) Decode(ids []int32) (string, error) {
	dec := byteDecoder()
	var raw []byte
	for i, id := range ids {
		if id == t.sot && i == 0 {
			continue
		}
		if id == t.eot {
			break
		}
		if id < 0 || int(id) >= len(t.tokens) {
			return "", fmt.Errorf("bpe: decode: id %d at position %d is outside the vocabulary (size %d)", id, i, len(t.tokens))
		}
		for _, r := range t.tokens[id] {
			b, ok := dec[r]
			if !ok {
				return "", fmt.Errorf("bpe: decode: token %d %q has character %q outside the byte alphabet", id, t.tokens[id], r)
			}
			raw = append(raw, b)
		}
	}
	raw = bytes.ReplaceAll(raw, []byte(endOfWord), []byte(" "))
	s := string(raw)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.TrimSpace(s), nil
}

// wordCache maps pre-tokens to ids. Captions reuse a small working set of
// words, so almost every lookup is a hit: hits read an immutable snapshot
// map through an atomic pointer (no lock, no shared writes, so cores do not
// contend), and misses go to small sharded maps that are folded into a new
// snapshot once they hold enough new words. Both are bounded.
type wordCache struct {
	seed      maphash.Seed
	frozen    atomic.Pointer[map[string][]int32]
	pending   atomic.Int64
	promoteMu sync.Mutex
	shards    [cacheShards]cacheShard
}

const (
	cacheShards   = 64
	cacheShardMax = 4096    // a full shard is emptied
	frozenMax     = 1 << 18 // the snapshot stops growing here
)

type cacheShard struct {
	mu sync.RWMutex
	m  map[string][]int32
	_  [40]byte // keep shards on separate cache lines
}

func (c *wordCache) init() {
	c.seed = maphash.MakeSeed()
	c.frozen.Store(&map[string][]int32{})
	c.pending.Store(0)
	for i := range c.shards {
		c.shards[i].m = make(map[string][]int32)
	}
}

func (c *wordCache) shard(word string) *cacheShard {
	return &c.shards[maphash.String(c.seed, word)%cacheShards]
}

func (c *wordCache) get(word string) ([]int32, bool) {
	if ids, ok := (*c.frozen.Load())[word]; ok {
		return ids, true
	}
	s := c.shard(word)
	s.mu.RLock()
	ids, ok := s.m[word]
	s.mu.RUnlock()
	return ids, ok
}

func (c *wordCache) put(word string, ids []int32) {
	s := c.shard(word)
	s.mu.Lock()
	if len(s.m) >= cacheShardMax {
		clear(s.m)
	}
	s.m[strings.Clone(word)] = ids
	s.mu.Unlock()
	// Fold new words into the snapshot when they reach half its size, so
	// copying costs O(1) per word overall; one goroutine does it.
	n := c.pending.Add(1)
	old := *c.frozen.Load()
	if n >= max(256, int64(len(old))/2) && len(old) < frozenMax && c.promoteMu.TryLock() {
		c.promote()
		c.promoteMu.Unlock()
	}
}

func (c *wordCache) promote() {
	old := *c.frozen.Load()
	next := make(map[string][]int32, len(old)+int(c.pending.Load()))
	for k, v := range old {
		next[k] = v
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, v := range s.m {
			if len(next) < frozenMax {
				next[k] = v
			}
		}
		clear(s.m)
		s.mu.Unlock()
	}
	c.frozen.Store(&next)
	c.pending.Store(0)
}
