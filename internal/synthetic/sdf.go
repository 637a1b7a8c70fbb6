package synthetic

import "math"

// Signed distance functions of the shapes, after Inigo Quilez's 2D
// distance functions. Coordinates are in units of the object's radius with
// y pointing down (image rows); every shape fits in the unit disc. A signed
// distance gives one-sample anti-aliasing: coverage = clamp(0.5 - d*R, 0, 1)
// with R the radius in pixels.

func length(x, y float64) float64 { return math.Sqrt(x*x + y*y) }

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

func sdCircle(x, y float64) float64 { return length(x, y) - 0.88 }

func box(x, y, hx, hy float64) float64 {
	dx, dy := math.Abs(x)-hx, math.Abs(y)-hy
	return length(math.Max(dx, 0), math.Max(dy, 0)) + math.Min(math.Max(dx, dy), 0)
}

func sdSquare(x, y float64) float64 { return box(x, y, 0.7, 0.7) }

func sdCross(x, y float64) float64 {
	return math.Min(box(x, y, 0.92, 0.3), box(x, y, 0.3, 0.92))
}

func sdDiamond(x, y float64) float64 {
	return (math.Abs(x) + math.Abs(y) - 1.0) / math.Sqrt2
}

func sdRing(x, y float64) float64 { return math.Abs(length(x, y)-0.66) - 0.28 }

// sdTriangle is an upright equilateral triangle (circumradius 0.94),
// lowered a little from its centroid so that it looks centred yet stays in
// the unit disc.
func sdTriangle(x, y float64) float64 {
	const k = 1.7320508075688772 // sqrt(3)
	const rc = 0.94
	const r = rc * k / 2 // half side
	// iq's sdEquilateralTriangle, y up; the triangle spans [-rc/2, rc]
	// around its centroid; shift it down by 0.1.
	px := math.Abs(x) - r
	py := -y + 0.1 + r/k
	if px+k*py > 0 {
		px, py = (px-k*py)/2, (-k*px-py)/2
	}
	px -= clamp(px, -2*r, 0)
	d := length(px, py)
	if py > 0 {
		return -d
	}
	return d
}

// sdStar is a fat five-pointed star (point up), fat so it survives 64x64.
func sdStar(x, y float64) float64 {
	const k1x, k1y = 0.809016994375, -0.587785252292
	const k2x, k2y = -k1x, k1y
	const r, rf = 1.0, 0.5
	px, py := math.Abs(x), -y
	if d := k1x*px + k1y*py; d > 0 {
		px -= 2 * d * k1x
		py -= 2 * d * k1y
	}
	if d := k2x*px + k2y*py; d > 0 {
		px -= 2 * d * k2x
		py -= 2 * d * k2y
	}
	px = math.Abs(px)
	py -= r
	bax, bay := rf*(-k1y), rf*k1x-1
	h := clamp((px*bax+py*bay)/(bax*bax+bay*bay), 0, r)
	d := length(px-bax*h, py-bay*h)
	if py*bax-px*bay < 0 {
		return -d
	}
	return d
}

// sdSemicircle is a half disc, flat side down, centred vertically. (A
// hexagon was tried first: at 64x64 it is a circle, IoU 0.94.)
func sdSemicircle(x, y float64) float64 {
	const r, c = 0.89, 0.445
	yUp := -y
	return math.Max(length(x, yUp+c)-r, -(yUp + c))
}

// sdHeart is iq's heart (tip down), scaled to the unit disc.
func sdHeart(x, y float64) float64 {
	const s = 1.45
	px, py := math.Abs(x)/s, -y/s+0.55
	var d float64
	if py+px > 1 {
		d = length(px-0.25, py-0.75) - math.Sqrt2/4
	} else {
		m := 0.5 * math.Max(px+py, 0)
		d = math.Sqrt(math.Min((px)*(px)+(py-1)*(py-1), (px-m)*(px-m)+(py-m)*(py-m)))
		if px-py < 0 {
			d = -d
		}
	}
	return d * s
}

// sdCrescent opens to the right.
func sdCrescent(x, y float64) float64 {
	outer := length(x, y) - 0.9
	inner := length(x-0.42, y) - 0.72
	return math.Max(outer, -inner)
}
