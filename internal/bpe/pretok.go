package bpe

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Special token strings, as in CLIP's vocabulary.
const (
	StartToken = "<|startoftext|>"
	EndToken   = "<|endoftext|>"
)

// The reference splits cleaned text with
//
//	<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//
// compiled by the `regex` module with IGNORECASE. Checked against that module
// code point by code point, IGNORECASE changes two things on lowercased text:
// U+017F (long s) matches 's' in "'s" and in "<|startoftext|>", and U+0345
// (combining ypogegrammeni, which case-folds to a letter) matches no
// alternative at all, so it is skipped like a space. Letters and numbers
// are Go's unicode tables (Unicode 15.0).

const ypogegrammeni = 0x345

// nextWord finds the next pre-token in s at or after byte i. It returns its
// byte span, or start == len(s) when there is none.
func nextWord(s string, i int) (start, end int) {
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == ' ' || (c >= '\t' && c <= '\r'):
				i++
				continue
			case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
				return i, letterRun(s, i+1)
			case '0' <= c && c <= '9':
				return i, i + 1
			case c == '\'':
				if n := contraction(s[i+1:]); n > 0 {
					return i, i + 1 + n
				}
			case c == '<':
				if n := specialPrefix(s[i:]); n > 0 {
					return i, i + n
				}
			}
			return i, otherRun(s, i+1)
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == ypogegrammeni || unicode.IsSpace(r):
			i += n
			continue
		case unicode.IsLetter(r):
			return i, letterRun(s, i+n)
		case unicode.IsNumber(r):
			return i, i + n
		}
		return i, otherRun(s, i+n)
	}
	return len(s), len(s)
}

func letterRun(s string, i int) int {
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
				i++
				continue
			}
			return i
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsLetter(r) {
			return i
		}
		i += n
	}
	return i
}

// otherRun extends [^\s\p{L}\p{N}]+ from i.
func otherRun(s string, i int) int {
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == ' ' || (c >= '\t' && c <= '\r') || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == ypogegrammeni || unicode.IsSpace(r) || unicode.IsLetter(r) || unicode.IsNumber(r) {
			return i
		}
		i += n
	}
	return i
}

// contraction returns the length of 's|t|re|ve|m|ll|d at the start of s
// (after the apostrophe), or 0.
func contraction(s string) int {
	if strings.HasPrefix(s, "\u017f") { // long s matches 's' case-insensitively
		return len("\u017f")
	}
	if s == "" {
		return 0
	}
	switch s[0] {
	case 's', 't', 'm', 'd', 'S', 'T', 'M', 'D':
		return 1
	case 'r', 'R':
		if len(s) > 1 && (s[1] == 'e' || s[1] == 'E') {
			return 2
		}
	case 'v', 'V':
		if len(s) > 1 && (s[1] == 'e' || s[1] == 'E') {
			return 2
		}
	case 'l', 'L':
		if len(s) > 1 && (s[1] == 'l' || s[1] == 'L') {
			return 2
		}
	}
	return 0
}

// specialPrefix returns the byte length of a special token (matched
// case-insensitively, long s included) at the start of s, or 0.
func specialPrefix(s string) int {
	for _, tok := range [...]string{StartToken, EndToken} {
		if n := foldPrefix(s, tok); n > 0 {
			return n
		}
	}
	return 0
}

// foldPrefix matches the ASCII pattern p at the start of s ignoring ASCII
// case and letting U+017F stand for 's'; it returns the bytes consumed.
func foldPrefix(s, p string) int {
	i := 0
	for j := 0; j < len(p); j++ {
		if i >= len(s) {
			return 0
		}
		if p[j] == 's' && strings.HasPrefix(s[i:], "\u017f") {
			i += len("\u017f")
			continue
		}
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != p[j] {
			return 0
		}
		i++
	}
	return i
}
