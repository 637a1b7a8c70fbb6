package spm

// pieceTrie finds the pieces that are prefixes of a string, shortest
// first, as the Darts double array SentencePiece builds over its pieces
// does. A transition table keyed by (node, byte) keeps it small and simple.
type pieceTrie struct {
	next  map[uint64]int32 // node<<8 | byte -> child node
	value []int32          // per node: piece id, or -1
}

func newPieceTrie(pieces map[string]int32) pieceTrie {
	t := pieceTrie{next: map[uint64]int32{}, value: []int32{-1}}
	for s, id := range pieces {
		node := int32(0)
		for i := 0; i < len(s); i++ {
			k := uint64(node)<<8 | uint64(s[i])
			child, ok := t.next[k]
			if !ok {
				child = int32(len(t.value))
				t.value = append(t.value, -1)
				t.next[k] = child
			}
			node = child
		}
		t.value[node] = id
	}
	return t
}

// prefixes calls fn(id, length) for each piece that is a prefix of s, in
// increasing length.
func (t *pieceTrie) prefixes(s string, fn func(id int32, n int)) {
	node := int32(0)
	for i := 0; i < len(s); i++ {
		child, ok := t.next[uint64(node)<<8|uint64(s[i])]
		if !ok {
			return
		}
		node = child
		if v := t.value[node]; v >= 0 {
			fn(v, i+1)
		}
	}
}

// longest is the length of the longest piece that is a prefix of s (0 for
// none).
func (t *pieceTrie) longest(s string) int {
	n := 0
	t.prefixes(s, func(_ int32, l int) { n = l })
	return n
}
