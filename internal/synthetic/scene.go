package synthetic

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Domain selects what the scenes show.
type Domain string

const (
	// General: one object with shape, colour, size, position and background.
	// Used to pretrain a small base model.
	General Domain = "general"
	// Scenes: two or three objects with spatial relations, counts and
	// textures; the fine-tuning target, where a general-only model is weak.
	Scenes Domain = "scenes"
)

// Kind is the layout of a scene.
type Kind string

const (
	KindSingle Kind = "single" // general domain
	KindPair   Kind = "pair"   // A left of / above B
	KindCount  Kind = "count"  // n identical objects, maybe one other
	KindRow    Kind = "row"    // three objects left to right
)

// Object is one drawn shape. Coordinates are fractions of the image's
// central square (0..1, y down).
type Object struct {
	Shape, Colour, Texture int
	X, Y, R                float64
}

// Scene is the full description of one image: what is drawn, how the file
// is stored, and its captions.
type Scene struct {
	Index      int
	ID         string
	Split      string
	Kind       Kind
	Objects    []Object
	Background int
	GradX      float64 // background gradient, fraction of brightness across the image
	GradY      float64
	Size       int  // general: index into sizes
	Position   int  // general: index into positions
	Vertical   bool // pair: A above B (else A left of B)
	Count      int  // count: number of identical objects (the first Count objects)
	Width      int
	Height     int
	JPEG       bool
	Key        string // canonical description; two scenes with the same key fit the same captions
	Captions   []string
}

// FileName is the image file name (no directory).
func (s *Scene) FileName() string {
	ext := "png"
	if s.JPEG {
		ext = "jpg"
	}
	return s.ID + "." + ext
}

func objKey(o Object) string {
	return fmt.Sprintf("%s %s %s", colours[o.Colour].name, textureNames[o.Texture], shapes[o.Shape].names[0].one)
}

func sameLook(a, b Object) bool {
	return a.Shape == b.Shape && a.Colour == b.Colour && a.Texture == b.Texture
}

// sampleGeneral draws the attributes of a one-object scene.
func sampleGeneral(r *rand.Rand, s *Scene) {
	s.Kind = KindSingle
	s.Size = r.IntN(len(sizes))
	s.Position = r.IntN(len(positions))
	s.Background = r.IntN(len(backgrounds))
	sz, pos := sizes[s.Size], positions[s.Position]
	o := Object{
		Shape:  r.IntN(len(shapes)),
		Colour: r.IntN(len(colours)),
		X:      pos.x + jitter(r, 0.03),
		Y:      pos.y + jitter(r, 0.03),
		R:      sz.rmin + r.Float64()*(sz.rmax-sz.rmin),
	}
	s.Objects = []Object{o}
	s.Key = fmt.Sprintf("single|%s|%s|%s|%s", objKey(o), sz.names[0], pos.names[0], backgrounds[s.Background].names[0])
}

// Texture frequencies of the scenes domain: solid is the most common, as in
// the general domain, but every object may carry a texture.
func sampleTexture(r *rand.Rand) int {
	switch v := r.Float64(); {
	case v < 0.4:
		return solid
	case v < 0.7:
		return striped
	default:
		return dotted
	}
}

func sampleLook(r *rand.Rand) Object {
	return Object{Shape: r.IntN(len(shapes)), Colour: r.IntN(len(colours)), Texture: sampleTexture(r)}
}

// distinctLook samples an object that looks different from all of others.
func distinctLook(r *rand.Rand, others ...Object) Object {
	for {
		o := sampleLook(r)
		ok := true
		for _, p := range others {
			if sameLook(o, p) {
				ok = false
			}
		}
		if ok {
			return o
		}
	}
}

func jitter(r *rand.Rand, a float64) float64 { return (2*r.Float64() - 1) * a }

// sampleScenes draws a multi-object scene.
func sampleScenes(r *rand.Rand, s *Scene) {
	s.Background = r.IntN(len(backgrounds))
	switch v := r.Float64(); {
	case v < 0.4:
		s.Kind = KindPair
		a := sampleLook(r)
		b := distinctLook(r, a)
		s.Vertical = r.IntN(2) == 1
		rad := 0.17 + r.Float64()*0.02
		off := jitter(r, 0.08) // shared across the pair: the relation stays clean
		if s.Vertical {
			a.X, a.Y = 0.5+off+jitter(r, 0.02), 0.28+jitter(r, 0.02)
			b.X, b.Y = 0.5+off+jitter(r, 0.02), 0.72+jitter(r, 0.02)
		} else {
			a.X, a.Y = 0.28+jitter(r, 0.02), 0.5+off+jitter(r, 0.02)
			b.X, b.Y = 0.72+jitter(r, 0.02), 0.5+off+jitter(r, 0.02)
		}
		a.R, b.R = rad, rad
		s.Objects = []Object{a, b}
		rel := "left-of"
		if s.Vertical {
			rel = "above"
		}
		s.Key = fmt.Sprintf("pair|%s|%s|%s", objKey(a), rel, objKey(b))
	case v < 0.7:
		s.Kind = KindCount
		s.Count = 2 + r.IntN(2)
		x := sampleLook(r)
		objs := make([]Object, 0, 4)
		for range s.Count {
			objs = append(objs, x)
		}
		extra := "-"
		if r.IntN(2) == 1 {
			y := distinctLook(r, x)
			objs = append(objs, y)
			extra = objKey(y)
		}
		// Distinct cells of a 3x3 grid: counts never overlap; positions are
		// not described, so they only add variety.
		cells := r.Perm(9)
		rad := 0.125 + r.Float64()*0.01
		for i := range objs {
			c := cells[i]
			objs[i].X = (float64(c%3)*2+1)/6 + jitter(r, 0.015)
			objs[i].Y = (float64(c/3)*2+1)/6 + jitter(r, 0.015)
			objs[i].R = rad
		}
		s.Objects = objs
		s.Key = fmt.Sprintf("count|%d|%s|%s", s.Count, objKey(x), extra)
	default:
		s.Kind = KindRow
		a := sampleLook(r)
		b := distinctLook(r, a)
		c := distinctLook(r, a, b)
		rad := 0.135 + r.Float64()*0.01
		off := jitter(r, 0.12)
		for i, o := range []*Object{&a, &b, &c} {
			o.X = 0.18 + 0.32*float64(i) + jitter(r, 0.01)
			o.Y = 0.5 + off + jitter(r, 0.03)
			o.R = rad
		}
		s.Objects = []Object{a, b, c}
		s.Key = fmt.Sprintf("row|%s|%s|%s", objKey(a), objKey(b), objKey(c))
	}
}

// article returns "a" or "an" for the phrase that follows it.
func article(next string) string {
	if next != "" && strings.ContainsRune("aeiou", rune(next[0])) {
		return "an"
	}
	return "a"
}

func pick(r *rand.Rand, xs []string) string { return xs[r.IntN(len(xs))] }

// objPhrase describes an object without article ("red striped circle",
// "striped red circle", "red circle with stripes"); plural for counts.
func objPhrase(r *rand.Rand, o Object, plural bool) string {
	sh := shapes[o.Shape].names[r.IntN(len(shapes[o.Shape].names))]
	noun := sh.one
	if plural {
		noun = sh.many
	}
	col := colours[o.Colour].name
	t := textures[o.Texture]
	if len(t.post) > 0 && r.IntN(4) == 0 {
		return col + " " + noun + " " + pick(r, t.post)
	}
	adj := pick(r, t.pre)
	switch {
	case adj == "":
		return col + " " + noun
	case o.Texture == solid || r.IntN(2) == 0:
		// "plain red square" reads better than "red plain square".
		return adj + " " + col + " " + noun
	default:
		return col + " " + adj + " " + noun
	}
}

// a prefixes a phrase with its indefinite article.
func a(p string) string { return article(p) + " " + p }
