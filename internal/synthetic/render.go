package synthetic

import (
	"image"
	"image/color"
	"math"
)

// Render draws s at its Width x Height. Objects live in the central square
// (side min(W, H)), which is what decode's center crop keeps; the rest is
// background. Edges are anti-aliased from the signed distance (one sample a
// pixel), which is both fast and smooth.
func Render(s *Scene) *image.RGBA {
	w, h := s.Width, s.Height
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	bg := backgrounds[s.Background].rgb
	// Background: base colour with a faint linear gradient (multiplicative,
	// about +-GradX/2 across the width). Float32 and no math calls: this
	// loop touches every pixel and dominates rendering otherwise.
	fx := make([]float32, w)
	for x := range fx {
		fx[x] = float32(s.GradX * (float64(x)/float64(w) - 0.5))
	}
	br, bgc, bb := float32(bg.R), float32(bg.G), float32(bg.B)
	for y := 0; y < h; y++ {
		fy := 1 + float32(s.GradY*(float64(y)/float64(h)-0.5))
		row := img.Pix[y*img.Stride : y*img.Stride+w*4]
		for x := 0; x < w; x++ {
			f := fy + fx[x]
			row[4*x] = to8(br * f)
			row[4*x+1] = to8(bgc * f)
			row[4*x+2] = to8(bb * f)
			row[4*x+3] = 255
		}
	}
	side := math.Min(float64(w), float64(h))
	ox, oy := (float64(w)-side)/2, (float64(h)-side)/2
	for _, o := range s.Objects {
		drawObject(img, o, ox, oy, side)
	}
	return img
}

// to8 rounds a non-negative channel value and saturates at 255.
func to8(v float32) uint8 {
	if v >= 254.5 {
		return 255
	}
	return uint8(v + 0.5)
}

// Texture scale, as a fraction of the central square: stripes and dots stay
// a few pixels wide even at 64x64.
const (
	stripePeriod = 0.09
	dotPeriod    = 0.1
	dotRadius    = 0.031
)

func drawObject(img *image.RGBA, o Object, ox, oy, side float64) {
	cx, cy := ox+o.X*side, oy+o.Y*side
	rad := o.R * side
	base := colours[o.Colour].rgb
	// The texture's second colour: lighter on dark objects, darker on light
	// ones, so the pattern has contrast for every colour, yet stays a tint of
	// the object colour so the silhouette does not melt into a light
	// background.
	lum := (0.299*float64(base.R) + 0.587*float64(base.G) + 0.114*float64(base.B)) / 255
	var alt color.RGBA
	if lum > 0.5 {
		alt = mix(base, color.RGBA{0, 0, 0, 255}, 0.5)
	} else {
		alt = mix(base, color.RGBA{255, 255, 255, 255}, 0.5)
	}
	sdf := shapes[o.Shape].sdf
	b := img.Bounds()
	x0 := max(b.Min.X, int(math.Floor(cx-rad-1)))
	x1 := min(b.Max.X, int(math.Ceil(cx+rad+1)))
	y0 := max(b.Min.Y, int(math.Floor(cy-rad-1)))
	y1 := min(b.Max.Y, int(math.Ceil(cy+rad+1)))
	inv := 1 / rad
	sp, dp, dr := stripePeriod*side, dotPeriod*side, dotRadius*side
	for y := y0; y < y1; y++ {
		py := float64(y) + 0.5 - cy
		row := img.Pix[(y-b.Min.Y)*img.Stride:]
		for x := x0; x < x1; x++ {
			px := float64(x) + 0.5 - cx
			d := sdf(px*inv, py*inv) * rad // distance in pixels
			cov := 0.5 - d
			if cov <= 0 {
				continue
			}
			if cov > 1 {
				cov = 1
			}
			c := base
			switch o.Texture {
			case striped:
				// Diagonal stripes anchored at the object centre.
				t := (px + py) / sp
				if t-math.Floor(t) < 0.5 {
					c = alt
				}
			case dotted:
				gx := px - dp*math.Round(px/dp)
				gy := py - dp*math.Round(py/dp)
				if gx*gx+gy*gy < dr*dr {
					c = alt
				}
			}
			i := 4 * (x - b.Min.X)
			row[i] = blend(row[i], c.R, cov)
			row[i+1] = blend(row[i+1], c.G, cov)
			row[i+2] = blend(row[i+2], c.B, cov)
		}
	}
}

func mix(a, b color.RGBA, t float64) color.RGBA {
	return color.RGBA{
		uint8(math.Round(float64(a.R)*(1-t) + float64(b.R)*t)),
		uint8(math.Round(float64(a.G)*(1-t) + float64(b.G)*t)),
		uint8(math.Round(float64(a.B)*(1-t) + float64(b.B)*t)),
		255,
	}
}

func blend(dst, src uint8, a float64) uint8 {
	return uint8(math.Round(float64(dst)*(1-a) + float64(src)*a))
}
