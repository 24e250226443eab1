package measure

// A small SVG line chart. It is written here rather than with a plotting
// library: gonum/plot's fonts and their init cost every foodpipe process,
// consumers included, 3.5 MB of resident memory and the binary 7 MB, for a
// chart only the bench draws.

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"slices"
)

// chart is lines over a shared x axis, with a log y axis.
type chart struct {
	Title, XLabel, YLabel string
	Series                []series
	// Target, when above 0, is drawn as a dashed red line at that y.
	Target      float64
	TargetLabel string
}

type series struct {
	Name   string
	X, Y   []float64
	Dashed bool
}

// The colours of the lines, in turn (Okabe–Ito, readable by colour-blind eyes).
var chartColours = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"}

const (
	chartW, chartH         = 760, 460
	plotL, plotR           = 70, 520 // plot area, left and right edges
	plotT, plotB           = 50, 400 // top and bottom edges
	legendX, legendLineLen = 540, 28
)

func (c chart) svg() []byte {
	xmin, xmax := math.Inf(1), math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for i := range s.X {
			xmin, xmax = math.Min(xmin, s.X[i]), math.Max(xmax, s.X[i])
			if s.Y[i] > 0 {
				ymin, ymax = math.Min(ymin, s.Y[i]), math.Max(ymax, s.Y[i])
			}
		}
	}
	if c.Target > 0 {
		ymin, ymax = math.Min(ymin, c.Target), math.Max(ymax, c.Target)
	}
	if math.IsInf(xmin, 0) || xmin == xmax {
		xmin, xmax = 0, 1
	}
	if math.IsInf(ymin, 0) {
		ymin, ymax = 1, 10
	}
	// Whole decades, so that the ticks are 1, 10, 100 ...
	lo, hi := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	if lo == hi {
		hi++
	}
	px := func(x float64) float64 { return plotL + (x-xmin)/(xmax-xmin)*(plotR-plotL) }
	py := func(y float64) float64 {
		return plotB - (math.Log10(math.Max(y, math.Pow(10, lo)))-lo)/(hi-lo)*(plotB-plotT)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="16" text-anchor="middle">%s</text>`+"\n", (plotL+plotR)/2, html.EscapeString(c.Title))
	// Axes, grid and ticks.
	for d := lo; d <= hi; d++ {
		y := py(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n",
			plotL, y, plotR, y, plotL-6, y+4, math.Pow(10, d))
	}
	for _, x := range xTicks(c.Series) {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" text-anchor="middle">%g</text>`+"\n",
			px(x), plotT, px(x), plotB, px(x), plotB+16, x)
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", plotL, plotT, plotR-plotL, plotB-plotT)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", (plotL+plotR)/2, plotB+36, html.EscapeString(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (plotT+plotB)/2, html.EscapeString(c.YLabel))
	// Lines, each with its legend entry.
	for i, s := range c.Series {
		colour := chartColours[i%len(chartColours)]
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		var pts bytes.Buffer
		for j := range s.X {
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(s.X[j]), py(s.Y[j]))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", bytes.TrimSpace(pts.Bytes()), colour, dash)
		for j := range s.X {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px(s.X[j]), py(s.Y[j]), colour)
		}
		ly := plotT + 10 + i*20
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%d" y="%d">%s</text>`+"\n",
			legendX, ly, legendX+legendLineLen, ly, colour, dash, legendX+legendLineLen+6, ly+4, html.EscapeString(s.Name))
	}
	if c.Target > 0 {
		y := py(c.Target)
		ly := plotT + 10 + len(c.Series)*20
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#c00" stroke-dasharray="2 3"/>`+"\n", plotL, y, plotR, y)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#c00" stroke-dasharray="2 3"/><text x="%d" y="%d">%s</text>`+"\n",
			legendX, ly, legendX+legendLineLen, ly, legendX+legendLineLen+6, ly+4, html.EscapeString(c.TargetLabel))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// xTicks are the x values the series have, each once, in order.
func xTicks(ss []series) []float64 {
	seen := map[float64]bool{}
	var out []float64
	for _, s := range ss {
		for _, x := range s.X {
			if !seen[x] {
				seen[x] = true
				out = append(out, x)
			}
		}
	}
	slices.Sort(out)
	return out
}
