package synthetic

import "image/color"

// word is a noun with its plural, so count captions read naturally.
type word struct{ one, many string }

// shape is one drawable shape with the names captions may use for it. The
// first name is canonical (used in keys and metadata).
type shape struct {
	names []word
	sdf   func(x, y float64) float64 // signed distance in units of the object radius; y points down
}

// Colours are saturated and far apart so that a small model at 64x64 can
// tell them apart; names are the plain colour words (no rare synonyms, the
// embedded model learns its vocabulary from these captions).
var colours = []struct {
	name string
	rgb  color.RGBA
}{
	{"red", color.RGBA{215, 25, 32, 255}},
	{"orange", color.RGBA{250, 130, 0, 255}},
	{"yellow", color.RGBA{245, 205, 0, 255}},
	{"green", color.RGBA{25, 160, 45, 255}},
	{"blue", color.RGBA{25, 70, 215, 255}},
	{"purple", color.RGBA{125, 40, 175, 255}},
	{"pink", color.RGBA{250, 95, 175, 255}},
	{"brown", color.RGBA{120, 70, 25, 255}},
	{"black", color.RGBA{20, 20, 20, 255}},
}

// Backgrounds are light, so every object colour stands out against them;
// each is drawn with a faint gradient in a random direction.
var backgrounds = []struct {
	names []string
	rgb   color.RGBA
}{
	{[]string{"white"}, color.RGBA{248, 248, 248, 255}},
	{[]string{"grey", "gray", "light grey"}, color.RGBA{200, 200, 200, 255}},
	{[]string{"beige", "cream"}, color.RGBA{238, 225, 195, 255}},
	{[]string{"pale blue", "light blue"}, color.RGBA{200, 222, 245, 255}},
	{[]string{"pale green", "light green"}, color.RGBA{205, 238, 205, 255}},
}

var shapes = []shape{
	{[]word{{"circle", "circles"}, {"disc", "discs"}, {"round shape", "round shapes"}}, sdCircle},
	{[]word{{"square", "squares"}, {"box", "boxes"}}, sdSquare},
	{[]word{{"triangle", "triangles"}}, sdTriangle},
	{[]word{{"star", "stars"}, {"five-pointed star", "five-pointed stars"}}, sdStar},
	{[]word{{"ring", "rings"}, {"hoop", "hoops"}, {"donut", "donuts"}}, sdRing},
	{[]word{{"cross", "crosses"}, {"plus sign", "plus signs"}}, sdCross},
	{[]word{{"diamond", "diamonds"}, {"rhombus", "rhombuses"}}, sdDiamond},
	{[]word{{"heart", "hearts"}, {"heart shape", "heart shapes"}}, sdHeart},
	{[]word{{"crescent", "crescents"}, {"crescent moon", "crescent moons"}, {"moon shape", "moon shapes"}}, sdCrescent},
	{[]word{{"semicircle", "semicircles"}, {"half disc", "half discs"}}, sdSemicircle},
}

// Sizes of the general domain (radius as a fraction of the image's central
// square).
var sizes = []struct {
	names      []string
	rmin, rmax float64
}{
	{[]string{"small", "little", "tiny"}, 0.13, 0.15},
	{[]string{"large", "big", "huge"}, 0.22, 0.245},
}

// Named positions of the general domain: centres inside the central square,
// which survives decode's center crop whatever the aspect ratio.
var positions = []struct {
	names []string // adverbial phrases: "a red circle <on the left>"
	x, y  float64
}{
	{[]string{"in the center", "in the middle", "at the centre"}, 0.5, 0.5},
	{[]string{"on the left", "at the left side", "in the left half"}, 0.28, 0.5},
	{[]string{"on the right", "at the right side", "in the right half"}, 0.72, 0.5},
	{[]string{"at the top", "near the top", "in the upper part"}, 0.5, 0.28},
	{[]string{"at the bottom", "near the bottom", "in the lower part"}, 0.5, 0.72},
}

// Textures of the scenes domain.
const (
	solid = iota
	striped
	dotted
)

var textures = []struct {
	pre  []string // adjectives before the noun ("" allowed for solid)
	post []string // phrases after the noun ("with stripes")
}{
	{[]string{"", "", "solid", "plain"}, nil},
	{[]string{"striped", "stripy"}, []string{"with stripes"}},
	{[]string{"dotted", "spotted", "polka-dot"}, []string{"with dots", "with spots"}},
}

var textureNames = []string{"solid", "striped", "dotted"}

// countWords: the first two entries are numbers; the rest only fit some
// templates (see countedNum).
var countWords = map[int][]string{2: {"two", "2", "a pair of"}, 3: {"three", "3"}}
