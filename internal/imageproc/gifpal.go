package imageproc

import "image/color"

// gifFirstPalette returns the colour table that applies to a GIF's first
// image (its local table, else the global one), read from the raw bytes.
// Go's decoder replaces the transparent index's entry with transparent
// black; Pillow's P -> RGB uses the stored colour, so FromImage's caller
// restores it from here. nil when the stream cannot be walked.
func gifFirstPalette(data []byte) color.Palette {
	if len(data) < 13 {
		return nil
	}
	table := func(at, flags int) (color.Palette, int) {
		if flags&0x80 == 0 {
			return nil, at
		}
		n := 2 << (flags & 7)
		if at+3*n > len(data) {
			return nil, -1
		}
		p := make(color.Palette, n)
		for i := range p {
			p[i] = color.RGBA{data[at+3*i], data[at+3*i+1], data[at+3*i+2], 255}
		}
		return p, at + 3*n
	}
	global, at := table(13, int(data[10]))
	for at >= 0 && at < len(data) {
		switch data[at] {
		case 0x21: // extension: label, then sub-blocks up to a 0 length
			at += 2
			for at < len(data) && data[at] != 0 {
				at += int(data[at]) + 1
			}
			at++
		case 0x2c: // image descriptor
			if at+10 > len(data) {
				return nil
			}
			if local, next := table(at+10, int(data[at+9])); next >= 0 && local != nil {
				return local
			}
			return global
		default:
			return nil
		}
	}
	return nil
}
