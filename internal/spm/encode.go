package spm

import "sync"

// bestNode is the best path ending at a byte position (unigram_model.cc
// EncodeOptimized's BestPathNode).
type bestNode struct {
	id       int32
	score    float32
	startsAt int32
}

type scratch struct {
	norm []byte
	best []bestNode
	ends []int32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// Encode is SentencePieceProcessor.encode(text): the ids of text's pieces.
func (m *Model) Encode(text string) []int32 { return m.AppendEncode(nil, text) }

// AppendEncode appends text's ids to dst.
func (m *Model) AppendEncode(dst []int32, text string) []int32 {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.norm = m.norm.normalize(sc.norm[:0], text)
	return m.encodeNormalized(dst, string(sc.norm), sc)
}

// encodeNormalized is the unigram Viterbi over the normalised text s, with
// SentencePiece's float32 path scores and tie-breaking (the first best
// candidate is kept), then runs of unknown pieces merged into one and, with
// byte fallback, unknown text spelt as byte pieces.
func (m *Model) encodeNormalized(dst []int32, s string, sc *scratch) []int32 {
	size := len(s)
	if size == 0 {
		return dst
	}
	if cap(sc.best) < size+1 {
		sc.best = make([]bestNode, size+1)
	}
	best := sc.best[:size+1]
	for i := range best {
		best[i] = bestNode{id: -1, startsAt: -1}
	}
	unkScore := m.minScore - unkPenalty
	t := &m.trie
	for start := 0; start < size; {
		base := best[start].score
		// OneCharLen: the length the lead byte announces, capped at the end.
		mblen := min(oneCharLen(s[start]), size-start)
		single := false
		node := int32(0)
		for k := start; k < size; k++ {
			if node = t.child(node, s[k]); node < 0 {
				break
			}
			id := t.value[node]
			if id < 0 {
				continue
			}
			p := &m.pieces[id]
			if p.typ == unused {
				continue
			}
			end := k + 1
			length := end - start
			target := &best[end]
			if p.typ == userDefined {
				// length * max_score_ - 0.1 is a double in the C++, and so
				// is its sum with the float path score; the node keeps a float.
				cand := float64(float32(length)*m.maxScore) - 0.1 + float64(base)
				if target.startsAt == -1 || cand > float64(target.score) {
					*target = bestNode{id: id, score: float32(cand), startsAt: int32(start)}
				}
			} else {
				cand := p.score + base
				if target.startsAt == -1 || cand > target.score {
					*target = bestNode{id: id, score: cand, startsAt: int32(start)}
				}
			}
			if length == mblen {
				single = true
			}
		}
		if !single {
			target := &best[start+mblen]
			cand := unkScore + base
			if target.startsAt == -1 || cand > target.score {
				*target = bestNode{id: m.unkID, score: cand, startsAt: int32(start)}
			}
		}
		start += mblen
	}
	// Backtrack: the path's end positions, last first.
	ends := sc.ends[:0]
	for end := size; end > 0; end = int(best[end].startsAt) {
		ends = append(ends, int32(end))
	}
	sc.ends = ends
	for i := len(ends) - 1; i >= 0; i-- {
		nd := best[ends[i]]
		if nd.id != m.unkID {
			dst = append(dst, nd.id)
			continue
		}
		// A run of unknown pieces is one unknown piece.
		from, to := int(nd.startsAt), int(ends[i])
		for i > 0 && best[ends[i-1]].id == m.unkID {
			i--
			to = int(ends[i])
		}
		if !m.byteFallback {
			dst = append(dst, m.unkID)
			continue
		}
		for b := from; b < to; b++ {
			dst = append(dst, m.byteIDs[s[b]])
		}
	}
	return dst
}

// oneCharLen is SentencePiece's string_util::OneCharLen: the UTF-8 length a
// lead byte announces (1 for continuation bytes and ASCII).
func oneCharLen(b byte) int {
	return int([16]byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4}[b>>4])
}
