package bpe

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/clipline/clipline/internal/atomicfile"
)

// BaseVocabSize is the number of tokens every byte-level vocabulary starts
// with: 256 byte symbols, their 256 "</w>" forms, and the two special tokens.
const BaseVocabSize = 256*2 + 2

// DefaultMinFrequency is the fewest occurrences a pair needs to be merged.
const DefaultMinFrequency = 2

// Learner counts words of a corpus and learns byte-level BPE merges from
// them, with the tokenizer's cleaning, pre-tokenization and byte alphabet,
// so the merges it learns are the ones the tokenizer applies. Add texts,
// then call Learn. Not safe for concurrent use.
type Learner struct {
	counts map[string]int64
	// MinFrequency is the fewest occurrences (counted over the corpus) a
	// pair needs to become a merge; learning stops early below it.
	MinFrequency int64
}

// NewLearner returns an empty learner.
func NewLearner() *Learner {
	return &Learner{counts: make(map[string]int64), MinFrequency: DefaultMinFrequency}
}

// Add counts the words of one text.
func (l *Learner) Add(text string) {
	s := Clean(text)
	for i := 0; ; {
		start, end := nextWord(s, i)
		if start == len(s) {
			return
		}
		w := s[start:end]
		// Special tokens written in a text encode to their own ids; they are
		// not material for merges.
		if w != StartToken && w != EndToken {
			l.counts[w]++
		}
		i = end
	}
}

// Learn learns byte-level BPE merges from texts until the vocabulary has
// vocabSize tokens (see Learner.Learn).
func Learn(texts []string, vocabSize int) (*Vocab, error) {
	l := NewLearner()
	for _, t := range texts {
		l.Add(t)
	}
	return l.Learn(vocabSize)
}

// Learn returns a vocabulary of at most vocabSize tokens laid out as CLIP's:
// the 256 byte symbols in bytes_to_unicode order, their "</w>" forms, one
// token per merge in rank order, then <|startoftext|> and <|endoftext|>.
// Each step merges the most frequent adjacent pair (ties: the pair whose
// symbols sort first), so the result is deterministic. It stops early, with
// a smaller vocabulary, when no pair occurs MinFrequency times. A pair whose
// merged string is already a token is skipped, so every token is unique.
func (l *Learner) Learn(vocabSize int) (*Vocab, error) {
	if vocabSize < BaseVocabSize {
		return nil, fmt.Errorf("bpe: learn: vocabulary size %d is below the %d byte and special tokens", vocabSize, BaseVocabSize)
	}
	minFreq := max(l.MinFrequency, 1)

	var st learnState
	st.heap.syms = &st.syms
	enc := byteEncoder()
	for _, b := range byteOrder {
		st.intern(string(enc[b]))
	}
	for _, b := range byteOrder {
		st.intern(string(enc[b]) + endOfWord)
	}
	// Byte symbols are interned in byteOrder, so map bytes to their ids.
	var symOf, symEndOf [256]int32
	for i, b := range byteOrder {
		symOf[b] = int32(i)
		symEndOf[b] = int32(256 + i)
	}

	// Words sorted so that the pair index and the result do not depend on
	// map iteration order.
	words := make([]string, 0, len(l.counts))
	for w := range l.counts {
		words = append(words, w)
	}
	slices.Sort(words)
	st.words = make([]learnWord, len(words))
	st.pairs = make(map[uint64]*pairStat)
	for wi, w := range words {
		syms := make([]int32, len(w))
		for i := 0; i < len(w); i++ {
			syms[i] = symOf[w[i]]
		}
		syms[len(syms)-1] = symEndOf[w[len(w)-1]]
		st.words[wi] = learnWord{syms: syms, count: l.counts[w]}
		st.addPairs(int32(wi), +1)
	}
	for _, p := range st.pairs {
		heap.Push(&st.heap, heapItem{key: p.key, count: p.count})
	}

	var merges [][2]string
	for len(st.syms)+2 < vocabSize {
		key, ok := st.best(minFreq)
		if !ok {
			break
		}
		a, b := int32(key>>32), int32(uint32(key))
		merged := st.syms[a] + st.syms[b]
		if _, exists := st.symID[merged]; exists {
			st.banned[key] = true
			continue
		}
		id := st.intern(merged)
		merges = append(merges, [2]string{st.syms[a], st.syms[b]})
		st.apply(a, b, id)
	}

	tokens := append(append([]string(nil), st.syms...), StartToken, EndToken)
	return &Vocab{Tokens: tokens, Merges: merges}, nil
}

type learnWord struct {
	syms  []int32
	count int64
}

type pairStat struct {
	key   uint64
	count int64
	words map[int32]struct{} // words that contain (or contained) the pair
}

type learnState struct {
	syms   []string
	symID  map[string]int32
	words  []learnWord
	pairs  map[uint64]*pairStat
	heap   pairHeap
	banned map[uint64]bool
}

func (st *learnState) intern(s string) int32 {
	if st.symID == nil {
		st.symID = make(map[string]int32)
		st.banned = make(map[uint64]bool)
	}
	id := int32(len(st.syms))
	st.syms = append(st.syms, s)
	st.symID[s] = id
	return id
}

// addPairs adds (sign +1) or removes (-1) word wi's pairs from the counts.
func (st *learnState) addPairs(wi int32, sign int64) {
	w := &st.words[wi]
	for i := 0; i+1 < len(w.syms); i++ {
		k := pairKey(w.syms[i], w.syms[i+1])
		p := st.pairs[k]
		if p == nil {
			p = &pairStat{key: k, words: make(map[int32]struct{})}
			st.pairs[k] = p
		}
		p.count += sign * w.count
		if sign > 0 {
			p.words[wi] = struct{}{}
		}
	}
}

// best pops the most frequent pair whose heap entry is current.
func (st *learnState) best(minFreq int64) (uint64, bool) {
	for st.heap.Len() > 0 {
		top := st.heap.items[0]
		p := st.pairs[top.key]
		if p == nil || p.count != top.count || st.banned[top.key] {
			heap.Pop(&st.heap) // stale
			continue
		}
		if top.count < minFreq {
			return 0, false
		}
		heap.Pop(&st.heap)
		return top.key, true
	}
	return 0, false
}

// apply merges (a, b) into id in every word containing it, left to right
// without overlaps (as the tokenizer does), updating pair counts.
func (st *learnState) apply(a, b, id int32) {
	p := st.pairs[pairKey(a, b)]
	touched := make(map[uint64]struct{})
	wis := make([]int32, 0, len(p.words))
	for wi := range p.words {
		wis = append(wis, wi)
	}
	for _, wi := range wis {
		w := &st.words[wi]
		if !containsPair(w.syms, a, b) {
			continue
		}
		for i := 0; i+1 < len(w.syms); i++ {
			touched[pairKey(w.syms[i], w.syms[i+1])] = struct{}{}
		}
		st.addPairs(wi, -1)
		out := w.syms[:0]
		for i := 0; i < len(w.syms); {
			if i+1 < len(w.syms) && w.syms[i] == a && w.syms[i+1] == b {
				out = append(out, id)
				i += 2
			} else {
				out = append(out, w.syms[i])
				i++
			}
		}
		w.syms = out
		st.addPairs(wi, +1)
		for i := 0; i+1 < len(w.syms); i++ {
			touched[pairKey(w.syms[i], w.syms[i+1])] = struct{}{}
		}
	}
	delete(st.pairs, pairKey(a, b))
	for k := range touched {
		if q := st.pairs[k]; q != nil {
			if q.count <= 0 {
				delete(st.pairs, k)
				continue
			}
			heap.Push(&st.heap, heapItem{key: k, count: q.count})
		}
	}
}

func containsPair(syms []int32, a, b int32) bool {
	for i := 0; i+1 < len(syms); i++ {
		if syms[i] == a && syms[i+1] == b {
			return true
		}
	}
	return false
}

type heapItem struct {
	key   uint64
	count int64
}

// pairHeap orders pairs by count, then by their symbol strings, so ties
// break the same way on every run.
type pairHeap struct {
	items []heapItem
	syms  *[]string // the learner's symbols, which grow as merges are added
}

func (h *pairHeap) Len() int { return len(h.items) }
func (h *pairHeap) Less(i, j int) bool {
	x, y := h.items[i], h.items[j]
	if x.count != y.count {
		return x.count > y.count
	}
	syms := *h.syms
	xa, xb := syms[int32(x.key>>32)], syms[int32(uint32(x.key))]
	ya, yb := syms[int32(y.key>>32)], syms[int32(uint32(y.key))]
	if xa != ya {
		return xa < ya
	}
	return xb < yb
}
func (h *pairHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *pairHeap) Push(x any)    { h.items = append(h.items, x.(heapItem)) }
func (h *pairHeap) Pop() any {
	it := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return it
}

// Save writes v to dir as vocab.json (token to id, in id order) and
// merges.txt (with the "#version: 0.2" header), creating dir if needed.
func (v *Vocab) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bpe: save: %w", err)
	}
	var vb bytes.Buffer
	vb.WriteString("{")
	for id, tok := range v.Tokens {
		if id > 0 {
			vb.WriteString(",")
		}
		vb.WriteString("\n  ")
		if err := writeJSONString(&vb, tok); err != nil {
			return err
		}
		fmt.Fprintf(&vb, ": %d", id)
	}
	vb.WriteString("\n}\n")
	if err := writeFileAtomic(filepath.Join(dir, VocabFile), vb.Bytes()); err != nil {
		return err
	}
	var mb bytes.Buffer
	w := bufio.NewWriter(&mb)
	w.WriteString("#version: 0.2\n")
	for _, m := range v.Merges {
		w.WriteString(m[0])
		w.WriteByte(' ')
		w.WriteString(m[1])
		w.WriteByte('\n')
	}
	w.Flush()
	return writeFileAtomic(filepath.Join(dir, MergesFile), mb.Bytes())
}

// writeJSONString writes s as a JSON string without HTML escaping (as
// Python's json.dump with ensure_ascii=False writes CLIP's vocab.json).
func writeJSONString(b *bytes.Buffer, s string) error {
	var tmp bytes.Buffer
	enc := json.NewEncoder(&tmp)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("bpe: save: token %q: %w", s, err)
	}
	b.Write(bytes.TrimRight(tmp.Bytes(), "\n"))
	return nil
}

// writeFileAtomic writes through a temporary file and a rename, so a
// failed run never leaves a truncated vocabulary behind.
func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("bpe: save %s: %w", path, err)
	}
	return nil
}
