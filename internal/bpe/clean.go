package bpe

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file reproduces the text cleaning of OpenAI's simple_tokenizer.py
// (without ftfy, which is out of scope):
//
//	text = html.unescape(html.unescape(text)).strip()
//	text = re.sub(r'\s+', ' ', text).strip()   # the `regex` module
//	text = text.lower()
//
// Python's str methods and the `regex` module differ from Go's standard
// library in small ways (which entities need no semicolon, which characters
// strip() removes, full lowercasing, final sigma), so each step is written
// out with Python's semantics.

// Clean returns text as the reference tokenizer sees it before
// pre-tokenization: HTML entities unescaped twice, whitespace runs collapsed
// to one space, ends stripped, lowercased. Invalid UTF-8 is replaced with
// U+FFFD first (Python would have decoded it with errors="replace").
func Clean(text string) string {
	if s, ok := cleanASCII(nil, text); ok {
		return string(s)
	}
	return cleanSlow(text)
}

// cleanASCII is the fast path for the common caption: ASCII without '&' or
// the control characters that Python's strip() treats as space but `\s` does
// not. It appends the cleaned text to dst; ok is false when text needs the
// general path.
func cleanASCII(dst []byte, text string) ([]byte, bool) {
	start := len(dst)
	pendingSpace := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c >= 0x80 || c == '&' || (c >= 0x1c && c <= 0x1f):
			return dst[:start], false
		case c == ' ' || (c >= '\t' && c <= '\r'):
			pendingSpace = len(dst) > start
		default:
			if pendingSpace {
				dst = append(dst, ' ')
				pendingSpace = false
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
	}
	return dst, true
}

func cleanSlow(text string) string {
	if !utf8.ValidString(text) {
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	text = pyUnescape(pyUnescape(text))
	text = strings.TrimFunc(text, pyIsSpace)
	var b strings.Builder
	b.Grow(len(text))
	inSpace := false
	for _, r := range text {
		if unicode.IsSpace(r) { // Go's IsSpace is exactly regex's \s (White_Space)
			if !inSpace {
				b.WriteByte(' ')
				inSpace = true
			}
			continue
		}
		inSpace = false
		b.WriteRune(r)
	}
	text = strings.TrimFunc(b.String(), pyIsSpace)
	return pyLower(text)
}

// pyIsSpace is Python's str.isspace for one character: regex's \s plus the
// information separators U+001C..U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pyLower is Python's str.lower: full lowercase mapping (U+0130 becomes
// "i\u0307") and capital sigma in final position becomes final sigma.
func pyLower(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch r {
		case 0x130:
			b.WriteString("i\u0307")
		case 0x3a3:
			if finalSigma(s, i) {
				b.WriteRune(0x3c2)
			} else {
				b.WriteRune(0x3c3)
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma reports whether the capital sigma at byte i of s is in the
// Final_Sigma context, as CPython's handle_capital_sigma decides it:
// preceded by a cased letter (skipping case-ignorables) and not followed by
// one (skipping case-ignorables).
func finalSigma(s string, i int) bool {
	before := s[:i]
	cased := false
	for len(before) > 0 {
		r, n := utf8.DecodeLastRuneInString(before)
		before = before[:len(before)-n]
		if !isCaseIgnorable(r) {
			cased = isCased(r)
			break
		}
	}
	if !cased {
		return false
	}
	after := s[i+len("\u03a3"):]
	for _, r := range after {
		if !isCaseIgnorable(r) {
			return !isCased(r)
		}
	}
	return true
}

// isCased is Unicode's Cased property: Lowercase, Uppercase or Lt.
func isCased(r rune) bool {
	return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

// isCaseIgnorable is Unicode's Case_Ignorable property: Mn, Me, Cf, Lm, Sk,
// or Word_Break MidLetter, MidNumLet or Single_Quote.
func isCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', 0xb7, 0x387, 0x55f, 0x5f4, 0x2018, 0x2019, 0x2024, 0x2027,
		0xfe13, 0xfe52, 0xfe55, 0xff07, 0xff0e, 0xff1a:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// pyUnescape is Python's html.unescape: the HTML5 character-reference rules,
// including named references without a semicolon resolved by longest
// known prefix, and the replacement table for invalid numeric references.
func pyUnescape(s string) string {
	amp := strings.IndexByte(s, '&')
	if amp < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for amp >= 0 {
		b.WriteString(s[:amp])
		rest := s[amp+1:]
		repl, n := charref(rest)
		if n == 0 {
			b.WriteByte('&')
		} else {
			b.WriteString(repl)
		}
		s = rest[n:]
		amp = strings.IndexByte(s, '&')
	}
	b.WriteString(s)
	return b.String()
}

// charref matches Python's pattern
//
//	&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
//
// at the start of s (just after the '&'), returning the replacement and the
// number of bytes consumed (0: no match, the '&' stays literal).
func charref(s string) (string, int) {
	if strings.HasPrefix(s, "#") {
		hex := len(s) > 1 && (s[1] == 'x' || s[1] == 'X')
		i := 1
		if hex {
			i = 2
		}
		j := i
		for j < len(s) && isDigit(s[j], hex) {
			j++
		}
		if j == i {
			return "", 0
		}
		num := parseSaturating(s[i:j], hex)
		if j < len(s) && s[j] == ';' {
			j++
		}
		return numericRef(num), j
	}
	// Named: up to 32 characters (code points) outside the excluded set.
	j, count := 0, 0
	for j < len(s) && count < 32 {
		r, n := utf8.DecodeRuneInString(s[j:])
		if r == '\t' || r == '\n' || r == '\f' || r == ' ' || r == '<' || r == '&' || r == '#' || r == ';' {
			break
		}
		j += n
		count++
	}
	if count == 0 {
		return "", 0
	}
	if j < len(s) && s[j] == ';' {
		j++
	}
	name := s[:j]
	if v, ok := html5Entities[name]; ok {
		return v, j
	}
	// Longest known prefix of at least 2 characters, excluding the whole
	// name (Python: for x in range(len(s)-1, 1, -1)).
	runes := []rune(name)
	for x := len(runes) - 1; x > 1; x-- {
		p := string(runes[:x])
		if v, ok := html5Entities[p]; ok {
			return v + string(runes[x:]), j
		}
	}
	return "&" + name, j
}

func isDigit(c byte, hex bool) bool {
	if '0' <= c && c <= '9' {
		return true
	}
	return hex && (('a' <= c && c <= 'f') || ('A' <= c && c <= 'F'))
}

// parseSaturating parses digits, saturating above the Unicode range (Python
// uses big integers; anything that large maps to U+FFFD anyway).
func parseSaturating(d string, hex bool) int64 {
	var n int64
	base := int64(10)
	if hex {
		base = 16
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		var v int64
		switch {
		case c <= '9':
			v = int64(c - '0')
		case c >= 'a':
			v = int64(c-'a') + 10
		default:
			v = int64(c-'A') + 10
		}
		n = n*base + v
		if n > 0x10ffff {
			return 0x110000
		}
	}
	return n
}

// invalidCharrefs is Python's html._invalid_charrefs (Windows-1252 for the
// C1 range, U+FFFD for NUL, CR kept).
var invalidCharrefs = map[int64]string{
	0x00: "\ufffd", 0x0d: "\r",
	0x80: "\u20ac", 0x81: "\u0081", 0x82: "\u201a", 0x83: "\u0192", 0x84: "\u201e",
	0x85: "\u2026", 0x86: "\u2020", 0x87: "\u2021", 0x88: "\u02c6", 0x89: "\u2030",
	0x8a: "\u0160", 0x8b: "\u2039", 0x8c: "\u0152", 0x8d: "\u008d", 0x8e: "\u017d",
	0x8f: "\u008f", 0x90: "\u0090", 0x91: "\u2018", 0x92: "\u2019", 0x93: "\u201c",
	0x94: "\u201d", 0x95: "\u2022", 0x96: "\u2013", 0x97: "\u2014", 0x98: "\u02dc",
	0x99: "\u2122", 0x9a: "\u0161", 0x9b: "\u203a", 0x9c: "\u0153", 0x9d: "\u009d",
	0x9e: "\u017e", 0x9f: "\u0178",
}

func numericRef(num int64) string {
	if v, ok := invalidCharrefs[num]; ok {
		return v
	}
	if (0xd800 <= num && num <= 0xdfff) || num > 0x10ffff {
		return "\ufffd"
	}
	// Python's html._invalid_codepoints are dropped.
	if (0x1 <= num && num <= 0x8) || num == 0xb || (0xe <= num && num <= 0x1f) ||
		(0x7f <= num && num <= 0x9f) || (0xfdd0 <= num && num <= 0xfdef) ||
		num&0xfffe == 0xfffe {
		return ""
	}
	return string(rune(num))
}
