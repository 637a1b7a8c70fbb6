package synthetic

import (
	"math/rand/v2"
	"strings"
)

// CaptionsPerImage is how many captions each image gets.
const CaptionsPerImage = 5

// A template renders one caption of a scene, drawing synonyms from r. Each
// scene kind has more templates than captions; an image gets five distinct
// templates, so its captions differ in structure, not only in wording.
type template func(r *rand.Rand, s *Scene) string

// captionScene fills s.Captions with CaptionsPerImage distinct captions.
func captionScene(r *rand.Rand, s *Scene) {
	var ts []template
	switch s.Kind {
	case KindSingle:
		ts = singleTemplates
	case KindPair:
		ts = pairTemplates
	case KindCount:
		if len(s.Objects) > s.Count {
			ts = countExtraTemplates
		} else {
			ts = countTemplates
		}
	case KindRow:
		ts = rowTemplates
	}
	order := r.Perm(len(ts))
	seen := map[string]bool{}
	s.Captions = s.Captions[:0]
	for _, i := range order {
		if len(s.Captions) == CaptionsPerImage {
			break
		}
		// Synonym draws can collide with an earlier caption; retry a few
		// times, then move on to the next template.
		for range 8 {
			c := tidy(ts[i](r, s))
			if !seen[c] {
				seen[c] = true
				s.Captions = append(s.Captions, c)
				break
			}
		}
	}
}

// tidy collapses spaces left by empty synonyms.
func tidy(s string) string { return strings.Join(strings.Fields(s), " ") }

// General domain: every caption names shape, colour, size, position and
// background, so that (with unique attribute sets per image) each caption
// fits exactly one image.
func single(r *rand.Rand, s *Scene) (size, col, noun, pos, bg string) {
	o := s.Objects[0]
	sh := shapes[o.Shape].names
	return pick(r, sizes[s.Size].names), colours[o.Colour].name, sh[r.IntN(len(sh))].one,
		pick(r, positions[s.Position].names), pick(r, backgrounds[s.Background].names)
}

var singleTemplates = []template{
	func(r *rand.Rand, s *Scene) string {
		size, col, noun, pos, bg := single(r, s)
		return a(size+" "+col+" "+noun) + " " + pos + " on " + a(bg) + " background"
	},
	func(r *rand.Rand, s *Scene) string {
		size, col, noun, pos, bg := single(r, s)
		return pos + ", " + a(size+" "+col+" "+noun) + " against " + a(bg) + " backdrop"
	},
	func(r *rand.Rand, s *Scene) string {
		size, col, noun, pos, bg := single(r, s)
		return a(bg) + " background with " + a(size+" "+col+" "+noun) + " " + pos
	},
	func(r *rand.Rand, s *Scene) string {
		size, col, noun, pos, bg := single(r, s)
		return size + " " + col + " " + noun + ", " + pos + ", " + bg + " background"
	},
	func(r *rand.Rand, s *Scene) string {
		size, col, noun, pos, bg := single(r, s)
		return "a picture of " + a(col+" "+noun) + " that is " + size + ", placed " + pos + " on " + bg
	},
	func(r *rand.Rand, s *Scene) string {
		size, col, noun, pos, bg := single(r, s)
		return "there is " + a(size+" "+col+" "+noun) + " " + pos + "; the background is " + bg
	},
	func(r *rand.Rand, s *Scene) string {
		size, col, noun, pos, bg := single(r, s)
		return a(size+" "+noun) + " coloured " + col + ", " + pos + ", on " + a(bg) + " background"
	},
	func(r *rand.Rand, s *Scene) string {
		size, col, noun, pos, bg := single(r, s)
		return "one " + size + " " + col + " " + noun + " " + pos + " of " + a(bg) + " image"
	},
}

// Pair scenes: A is left of (or above) B. Captions state the relation from
// either side, so word order alone does not give the answer.
type rel struct {
	fwd, back   []string // "A fwd B", "B back A"
	first, last []string // adverbial place of A and of B
	besideA     []string // "B with A <besideA>"
}

var horizontal = rel{
	fwd:     []string{"to the left of", "left of", "on the left of"},
	back:    []string{"to the right of", "right of", "on the right of"},
	first:   []string{"on the left", "at the left"},
	last:    []string{"on the right", "at the right"},
	besideA: []string{"on its left", "to its left"},
}

var vertical = rel{
	fwd:     []string{"above", "over"},
	back:    []string{"below", "under", "beneath"},
	first:   []string{"at the top", "on top"},
	last:    []string{"at the bottom", "underneath"},
	besideA: []string{"above it", "over it"},
}

func pair(r *rand.Rand, s *Scene) (rl rel, pa, pb string) {
	rl = horizontal
	if s.Vertical {
		rl = vertical
	}
	return rl, objPhrase(r, s.Objects[0], false), objPhrase(r, s.Objects[1], false)
}

var pairTemplates = []template{
	func(r *rand.Rand, s *Scene) string {
		rl, pa, pb := pair(r, s)
		return a(pa) + " " + pick(r, rl.fwd) + " " + a(pb)
	},
	func(r *rand.Rand, s *Scene) string {
		rl, pa, pb := pair(r, s)
		return a(pb) + " " + pick(r, rl.back) + " " + a(pa)
	},
	func(r *rand.Rand, s *Scene) string {
		rl, pa, pb := pair(r, s)
		return a(pa) + " " + pick(r, rl.first) + " and " + a(pb) + " " + pick(r, rl.last)
	},
	func(r *rand.Rand, s *Scene) string {
		rl, pa, pb := pair(r, s)
		return "two shapes: " + pa + " " + pick(r, rl.first) + ", " + pb + " " + pick(r, rl.last)
	},
	func(r *rand.Rand, s *Scene) string {
		rl, pa, pb := pair(r, s)
		return a(pb) + ", and " + a(pa) + " " + pick(r, rl.besideA)
	},
	func(r *rand.Rand, s *Scene) string {
		rl, pa, pb := pair(r, s)
		return pick(r, rl.first) + " " + a(pa) + ", " + pick(r, rl.last) + " " + a(pb) + ", on " + a(pick(r, backgrounds[s.Background].names)) + " background"
	},
	func(r *rand.Rand, s *Scene) string {
		rl, pa, pb := pair(r, s)
		return "a picture showing " + a(pa) + " " + pick(r, rl.fwd) + " " + a(pb)
	},
}

// Count scenes: the first Count objects are identical; an optional extra
// object follows.
func counted(r *rand.Rand, s *Scene) (n, xs string) {
	return pick(r, countWords[s.Count]), objPhrase(r, s.Objects[0], true)
}

// countedNum is counted without "a pair of", for templates where only a
// number reads well ("exactly two", "there are 2").
func countedNum(r *rand.Rand, s *Scene) (n, xs string) {
	ws := countWords[s.Count]
	return ws[r.IntN(2)], objPhrase(r, s.Objects[0], true)
}

var countTemplates = []template{
	func(r *rand.Rand, s *Scene) string { n, xs := counted(r, s); return n + " " + xs },
	func(r *rand.Rand, s *Scene) string {
		n, xs := counted(r, s)
		return n + " " + xs + " on " + a(pick(r, backgrounds[s.Background].names)) + " background"
	},
	func(r *rand.Rand, s *Scene) string {
		n, xs := countedNum(r, s)
		return "a picture with exactly " + n + " " + xs
	},
	func(r *rand.Rand, s *Scene) string {
		n, xs := countedNum(r, s)
		return "there are " + n + " " + xs + " and nothing else"
	},
	func(r *rand.Rand, s *Scene) string { n, xs := countedNum(r, s); return "a group of " + n + " " + xs },
	func(r *rand.Rand, s *Scene) string { n, xs := counted(r, s); return "only " + n + " " + xs },
}

func extra(r *rand.Rand, s *Scene) string { return objPhrase(r, s.Objects[s.Count], false) }

var countExtraTemplates = []template{
	func(r *rand.Rand, s *Scene) string {
		n, xs := counted(r, s)
		return n + " " + xs + " and " + a(extra(r, s))
	},
	func(r *rand.Rand, s *Scene) string {
		n, xs := counted(r, s)
		return a(extra(r, s)) + " and " + n + " " + xs
	},
	func(r *rand.Rand, s *Scene) string {
		n, xs := counted(r, s)
		return a(extra(r, s)) + " together with " + n + " " + xs
	},
	func(r *rand.Rand, s *Scene) string {
		n, xs := countedNum(r, s)
		return "there are " + n + " " + xs + " and one " + extra(r, s)
	},
	func(r *rand.Rand, s *Scene) string {
		n, xs := counted(r, s)
		return n + " " + xs + " plus a single " + extra(r, s)
	},
	func(r *rand.Rand, s *Scene) string {
		n, xs := counted(r, s)
		return n + " " + xs + " with " + a(extra(r, s)) + " on " + a(pick(r, backgrounds[s.Background].names)) + " background"
	},
}

// Row scenes: three objects, left to right.
func row(r *rand.Rand, s *Scene) (pa, pb, pc string) {
	return objPhrase(r, s.Objects[0], false), objPhrase(r, s.Objects[1], false), objPhrase(r, s.Objects[2], false)
}

var rowTemplates = []template{
	func(r *rand.Rand, s *Scene) string {
		pa, pb, pc := row(r, s)
		return a(pa) + ", " + a(pb) + " and " + a(pc) + " from left to right"
	},
	func(r *rand.Rand, s *Scene) string {
		pa, pb, pc := row(r, s)
		return "from left to right: " + a(pa) + ", " + a(pb) + ", " + a(pc)
	},
	func(r *rand.Rand, s *Scene) string {
		pa, pb, pc := row(r, s)
		return a(pa) + " on the left, " + a(pb) + " in the middle and " + a(pc) + " on the right"
	},
	func(r *rand.Rand, s *Scene) string {
		pa, pb, pc := row(r, s)
		return a(pb) + " between " + a(pa) + " on the left and " + a(pc) + " on the right"
	},
	func(r *rand.Rand, s *Scene) string {
		pa, pb, pc := row(r, s)
		return "three shapes in a row: " + pa + ", " + pb + ", " + pc
	},
	func(r *rand.Rand, s *Scene) string {
		pa, pb, pc := row(r, s)
		return "from right to left: " + a(pc) + ", " + a(pb) + " and " + a(pa)
	},
	func(r *rand.Rand, s *Scene) string {
		pa, pb, pc := row(r, s)
		return "a row of " + a(pa) + ", " + a(pb) + " and " + a(pc) + " on " + a(pick(r, backgrounds[s.Background].names)) + " background"
	},
}
