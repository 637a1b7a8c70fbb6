package bpe

import "unsafe"

// byteEncoderTable is CLIP's bytes_to_unicode: printable Latin-1 bytes map to
// themselves, the other 68 bytes to U+0100 upwards, so every byte is a
// visible character. byteOrder lists bytes in the order the reference builds
// the vocabulary from (the printable ranges first).
var byteEncoderTable, byteOrder = func() ([256]rune, [256]byte) {
	var enc [256]rune
	var order [256]byte
	var seen [256]bool
	n := 0
	for _, rg := range [][2]int{{'!', '~'}, {0xa1, 0xac}, {0xae, 0xff}} {
		for b := rg[0]; b <= rg[1]; b++ {
			enc[b] = rune(b)
			seen[b] = true
			order[n] = byte(b)
			n++
		}
	}
	extra := 0
	for b := 0; b < 256; b++ {
		if !seen[b] {
			enc[b] = rune(256 + extra)
			extra++
			order[n] = byte(b)
			n++
		}
	}
	return enc, order
}()

var byteDecoderTable = func() map[rune]byte {
	m := make(map[rune]byte, 256)
	for b, r := range byteEncoderTable {
		m[r] = byte(b)
	}
	return m
}()

func byteEncoder() *[256]rune      { return &byteEncoderTable }
func byteDecoder() map[rune]byte   { return byteDecoderTable }
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
