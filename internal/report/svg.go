package report

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// Series is one line of a chart.
type Series struct {
	Name  string
	Color string
	X, Y  []float64
}

// Chart is a line chart drawn as inline SVG: axes with ticks and labels, so
// the report needs no script to show it.
type Chart struct {
	Title, XLabel, YLabel string
	Series                []Series
	// YMin and YMax fix the y range when YMax > YMin (recalls: 0 to 1).
	YMin, YMax float64
}

const (
	chartW, chartH         = 460, 270
	padL, padR, padT, padB = 62, 14, 30, 46
	plotW, plotH           = chartW - padL - padR, chartH - padT - padB
	markersBelow           = 40 // points per series under which each gets a dot
	tickCount              = 5
	legendW                = 92 // pixels per legend entry
)

// SVG renders the chart; every text is escaped.
func (c Chart) SVG() string {
	xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for i := range s.X {
			if math.IsNaN(s.Y[i]) || math.IsInf(s.Y[i], 0) {
				continue
			}
			xlo, xhi = math.Min(xlo, s.X[i]), math.Max(xhi, s.X[i])
			ylo, yhi = math.Min(ylo, s.Y[i]), math.Max(yhi, s.Y[i])
		}
	}
	if c.YMax > c.YMin {
		ylo, yhi = c.YMin, c.YMax
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		chartW, chartH, chartW, chartH, html.EscapeString(c.Title))
	fmt.Fprintf(&b, `<text x="%d" y="18" class="title">%s</text>`, padL, html.EscapeString(c.Title))
	if math.IsInf(xlo, 0) {
		fmt.Fprintf(&b, `<text x="%d" y="%d">no data</text></svg>`, padL+10, padT+plotH/2)
		return b.String()
	}
	xt, xlo, xhi := ticks(xlo, xhi)
	yt, ylo, yhi := ticks(ylo, yhi)
	px := func(x float64) float64 { return padL + (x-xlo)/(xhi-xlo)*plotW }
	py := func(y float64) float64 { return padT + plotH - (y-ylo)/(yhi-ylo)*plotH }
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" class="plot"/>`, padL, padT, plotW, plotH)
	for _, t := range xt {
		x := px(t)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="grid"/>`, x, padT, x, padT+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, x, padT+plotH+16, tickLabel(t))
	}
	for _, t := range yt {
		y := py(t)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/>`, padL, y, padL+plotW, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, padL-5, y+4, tickLabel(t))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`, padL+plotW/2, chartH-8, html.EscapeString(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(14 %d) rotate(-90)" text-anchor="middle">%s</text>`, padT+plotH/2, html.EscapeString(c.YLabel))
	for i, s := range c.Series {
		var pts []string
		for j := range s.X {
			if !math.IsNaN(s.Y[j]) && !math.IsInf(s.Y[j], 0) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.X[j]), py(s.Y[j])))
			}
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.Join(pts, " "), s.Color)
		if len(pts) < markersBelow {
			for _, p := range pts {
				xy := strings.SplitN(p, ",", 2)
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`, xy[0], xy[1], s.Color)
			}
		}
		// The legend, in the title's row from the right, clear of the lines.
		lx := chartW - padR - legendW*(len(c.Series)-i)
		fmt.Fprintf(&b, `<line x1="%d" y1="14" x2="%d" y2="14" stroke="%s" stroke-width="2"/>`, lx, lx+16, s.Color)
		fmt.Fprintf(&b, `<text x="%d" y="18">%s</text>`, lx+20, html.EscapeString(s.Name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// ticks returns about tickCount round values covering [lo, hi] and the
// range widened to the outer ticks.
func ticks(lo, hi float64) ([]float64, float64, float64) {
	if hi <= lo {
		d := math.Max(math.Abs(lo)*0.1, 1e-9)
		lo, hi = lo-d, hi+d
	}
	raw := (hi - lo) / tickCount
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	first := math.Floor(lo/step+1e-9) * step
	last := math.Ceil(hi/step-1e-9) * step
	var ts []float64
	for i := 0; ; i++ {
		t := first + float64(i)*step
		if t > last+step/2 {
			break
		}
		ts = append(ts, math.Round(t/step)*step)
	}
	return ts, first, last
}

// tickLabel prints a tick without float noise (0.30000000000000004).
func tickLabel(v float64) string {
	if v == 0 {
		return "0"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
