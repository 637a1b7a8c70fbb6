package spm

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// spaceSymbol is U+2581, SentencePiece's visible whitespace.
const spaceSymbol = "\u2581"

// normalizer is SentencePiece's Normalizer for one NormalizerSpec.
type normalizer struct {
	charsmap               charsmap
	addDummyPrefix         bool
	removeExtraWhitespaces bool
	escapeWhitespaces      bool
	whitespaceAsSuffix     bool      // TrainerSpec.treat_whitespace_as_suffix
	user                   pieceTrie // user-defined pieces pass through unnormalised
}

func defaultNormalizer() normalizer {
	return normalizer{addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true}
}

func (n *normalizer) parseSpec(b []byte) error {
	return fields(b, func(num protowire.Number, _ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 2:
			cm, err := parseCharsmap(v)
			if err != nil {
				return fmt.Errorf("normalizer_spec.precompiled_charsmap: %w", err)
			}
			n.charsmap = cm
		case 3:
			n.addDummyPrefix = x != 0
		case 4:
			n.removeExtraWhitespaces = x != 0
		case 5:
			n.escapeWhitespaces = x != 0
		}
		return nil
	})
}

// charsmap is a precompiled normalisation map: a Darts-clone double array
// over the UTF-8 of the source strings, whose values are offsets of
// NUL-terminated replacements in normalized.
type charsmap struct {
	units      []uint32
	normalized []byte
}

// parseCharsmap splits the blob: <trie size uint32 LE><trie><strings>.
func parseCharsmap(b []byte) (charsmap, error) {
	if len(b) == 0 {
		return charsmap{}, nil
	}
	if len(b) < 4 {
		return charsmap{}, fmt.Errorf("%d bytes, too short", len(b))
	}
	size := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if uint64(size) >= uint64(len(b)) || size%4 != 0 {
		return charsmap{}, fmt.Errorf("trie size %d does not fit %d bytes", size, len(b))
	}
	cm := charsmap{units: make([]uint32, size/4), normalized: b[size:]}
	for i := range cm.units {
		cm.units[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return cm, nil
}

// longestMatch is Darts' commonPrefixSearch keeping the longest result (of
// the first 32, as the C++ keeps): the match length and its replacement.
func (cm *charsmap) longestMatch(s string) (int, string) {
	if len(cm.units) == 0 {
		return 0, ""
	}
	offset := func(u uint32) uint32 { return (u >> 10) << ((u & (1 << 9)) >> 6) }
	pos := offset(cm.units[0])
	best, value, found := 0, uint32(0), 0
	for i := 0; i < len(s); i++ {
		pos ^= uint32(s[i])
		if int(pos) >= len(cm.units) {
			break
		}
		u := cm.units[pos]
		if u&((1<<31)|0xFF) != uint32(s[i]) { // label
			break
		}
		pos ^= offset(u)
		if (u>>8)&1 == 1 { // has leaf
			if found < 32 && int(pos) < len(cm.units) {
				best, value = i+1, cm.units[pos]&((1<<31)-1)
			}
			found++
		}
	}
	if best == 0 || int(value) >= len(cm.normalized) {
		return 0, ""
	}
	rest := cm.normalized[value:]
	if end := indexByte(rest, 0); end >= 0 {
		rest = rest[:end]
	}
	return best, string(rest)
}

func indexByte(b []byte, c byte) int {
	for i, v := range b {
		if v == c {
			return i
		}
	}
	return -1
}

// normalizePrefix is Normalizer::NormalizePrefix: the replacement of the
// start of s and how many bytes it consumes.
func (n *normalizer) normalizePrefix(s string) (string, int) {
	if l := n.user.longest(s); l > 0 {
		return s[:l], l
	}
	if l, rep := n.charsmap.longestMatch(s); l > 0 {
		return rep, l
	}
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && size <= 1 {
		return "\uFFFD", 1 // malformed UTF-8, as the C++ replaces it
	}
	return s[:size], size
}

// normalize is Normalizer::Normalize, appending to dst.
func (n *normalizer) normalize(dst []byte, s string) []byte {
	if n.removeExtraWhitespaces {
		for len(s) > 0 {
			rep, l := n.normalizePrefix(s)
			if rep != " " {
				break
			}
			s = s[l:]
		}
	}
	if len(s) == 0 {
		return dst
	}
	start := len(dst)
	space := " "
	if n.escapeWhitespaces {
		space = spaceSymbol
	}
	if !n.whitespaceAsSuffix && n.addDummyPrefix {
		dst = append(dst, space...)
	}
	prevSpace := n.removeExtraWhitespaces
	for len(s) > 0 {
		rep, l := n.normalizePrefix(s)
		if prevSpace {
			rep = strings.TrimLeft(rep, " ")
		}
		if rep != "" {
			for i := 0; i < len(rep); i++ {
				if n.escapeWhitespaces && rep[i] == ' ' {
					dst = append(dst, spaceSymbol...)
				} else {
					dst = append(dst, rep[i])
				}
			}
			prevSpace = rep[len(rep)-1] == ' '
		}
		s = s[l:]
		if !n.removeExtraWhitespaces {
			prevSpace = false
		}
	}
	if n.removeExtraWhitespaces {
		for len(dst) > start && strings.HasSuffix(string(dst[start:]), space) {
			dst = dst[:len(dst)-len(space)]
		}
	}
	if n.whitespaceAsSuffix && n.addDummyPrefix {
		dst = append(dst, space...)
	}
	return dst
}
