package measure

import (
	"encoding/xml"
	"strings"
	"testing"
)

// The chart is well-formed SVG with one line and one legend entry per
// series, names escaped, and the target drawn.
func TestChartDrawsEverySeries(t *testing.T) {
	c := chart{Title: "p99 <against> linger", XLabel: "x", YLabel: "y", Target: 5, TargetLabel: "target",
		Series: []series{
			{Name: "100/s, fetch wait 10ms", X: []float64{0, 1, 5, 20}, Y: []float64{2, 3, 7, 22}},
			{Name: "1000/s & more", X: []float64{0, 1, 5, 20}, Y: []float64{4, 4.5, 8, 25}, Dashed: true},
		}}
	out := c.svg()
	if err := xml.Unmarshal(out, new(struct{ XMLName xml.Name })); err != nil {
		t.Fatalf("not well-formed XML: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"100/s, fetch wait 10ms", "1000/s &amp; more", "p99 &lt;against&gt; linger", "target", `stroke-dasharray="6 4"`} {
		if !strings.Contains(s, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if n := strings.Count(s, "<polyline"); n != 2 {
		t.Errorf("%d lines, want 2", n)
	}
	if n := strings.Count(s, "<circle"); n != 8 {
		t.Errorf("%d points, want 8", n)
	}
	// Decades from 1 to 100 cover 2 ... 25 ms.
	for _, tick := range []string{">1</text>", ">10</text>", ">100</text>"} {
		if !strings.Contains(s, tick) {
			t.Errorf("no y tick %s", tick)
		}
	}
}
