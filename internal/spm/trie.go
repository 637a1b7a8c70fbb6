package spm

import "sort"

// pieceTrie finds the pieces that are prefixes of a string, shortest
// first, as the Darts double array SentencePiece builds over its pieces
// does. Each node's children are a sorted run of edges (the root's, which
// are many, a direct table), so a step is a short scan without hashing.
type pieceTrie struct {
	root  [256]int32 // child of the root per byte, 0 for none
	first []int32    // per node: its children's run in edges, first[n]..first[n+1]
	edges []edge
	value []int32 // per node: piece id, or -1
}

type edge struct {
	b     byte
	child int32
}

func newPieceTrie(pieces map[string]int32) pieceTrie {
	// Build with maps, then lay the children out in runs.
	type node struct {
		kids  map[byte]int32
		value int32
	}
	nodes := []node{{value: -1}}
	for s, id := range pieces {
		n := int32(0)
		for i := 0; i < len(s); i++ {
			if nodes[n].kids == nil {
				nodes[n].kids = map[byte]int32{}
			}
			c, ok := nodes[n].kids[s[i]]
			if !ok {
				c = int32(len(nodes))
				nodes = append(nodes, node{value: -1})
				nodes[n].kids[s[i]] = c
			}
			n = c
		}
		nodes[n].value = id
	}
	t := pieceTrie{first: make([]int32, len(nodes)+1), value: make([]int32, len(nodes))}
	for n, nd := range nodes {
		t.value[n] = nd.value
		t.first[n] = int32(len(t.edges))
		start := len(t.edges)
		for b, c := range nd.kids {
			t.edges = append(t.edges, edge{b, c})
		}
		run := t.edges[start:]
		sort.Slice(run, func(i, j int) bool { return run[i].b < run[j].b })
	}
	t.first[len(nodes)] = int32(len(t.edges))
	for _, e := range t.edges[t.first[0]:t.first[1]] {
		t.root[e.b] = e.child
	}
	return t
}

// child is node n's child by byte b, or -1.
func (t *pieceTrie) child(n int32, b byte) int32 {
	if n == 0 {
		if c := t.root[b]; c != 0 {
			return c
		}
		return -1
	}
	for _, e := range t.edges[t.first[n]:t.first[n+1]] {
		if e.b >= b {
			if e.b == b {
				return e.child
			}
			break
		}
	}
	return -1
}

// longest is the length of the longest piece that is a prefix of s (0 for
// none).
func (t *pieceTrie) longest(s string) int {
	best, n := 0, int32(0)
	for i := 0; i < len(s); i++ {
		if n = t.child(n, s[i]); n < 0 {
			break
		}
		if t.value[n] >= 0 {
			best = i + 1
		}
	}
	return best
}
