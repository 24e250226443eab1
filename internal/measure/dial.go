package measure

// The latency dial: how the producer's linger and the consumer's fetch wait
// trade latency for batching, at a low, a middle and a high rate.

import (
	"context"
	"fmt"
	"image/color"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// BenchDialPoint is one setting of the dial at one rate.
type BenchDialPoint struct {
	Rate              float64 `json:"rate"`
	LingerMs          float64 `json:"linger_ms"`
	FetchWaitMs       float64 `json:"fetch_wait_ms"`
	P50ms             float64 `json:"p50_ms"`
	P99ms             float64 `json:"p99_ms"`
	MaxMs             float64 `json:"max_ms"`
	BatchesPerSec     float64 `json:"batches_per_s"`
	CPUMicrosPerOrder float64 `json:"cpu_us_per_order"`
}

// BenchDial is the sweep, and where its chart was written.
type BenchDial struct {
	Points []BenchDialPoint `json:"points"`
	Chart  string           `json:"chart,omitempty"`
}

// The dial's settings (its rates are BenchOptions.DialRates).
var (
	dialLingers    = []time.Duration{0, time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond}
	dialFetchWaits = []time.Duration{10 * time.Millisecond, 250 * time.Millisecond}
)

// latencyDial runs every rate with every linger and fetch wait for
// o.RateFor each, and draws p99 against linger.
func (b *bench) latencyDial(ctx context.Context, o BenchOptions) (BenchDial, error) {
	var dial BenchDial
	for _, r := range o.DialRates {
		for _, fw := range dialFetchWaits {
			for _, linger := range dialLingers {
				_, _, p, err := b.atRateWith(ctx, r, o.RateFor, linger, fw)
				if err != nil {
					return dial, err
				}
				dial.Points = append(dial.Points, p)
				fmt.Fprintf(b.out, "dial      %v/s, linger %v, fetch wait %v: p50 %.1f ms p99 %.1f ms max %.1f ms, %.0f batches/s, %.1f CPU µs/order\n",
					r, linger, fw, p.P50ms, p.P99ms, p.MaxMs, p.BatchesPerSec, p.CPUMicrosPerOrder)
			}
		}
	}
	if o.Chart != "" {
		if err := drawDial(dial.Points, o.DialRates, o.Chart); err != nil {
			return dial, err
		}
		dial.Chart = o.Chart
	}
	return dial, nil
}

// drawDial writes p99 latency against linger, one line per rate and fetch
// wait, to path (SVG or PNG by its extension).
func drawDial(points []BenchDialPoint, rates []float64, path string) error {
	p := plot.New()
	p.Title.Text = "end-to-end p99 against producer linger"
	p.X.Label.Text = "producer linger (ms)"
	p.Y.Label.Text = "p99 latency (ms)"
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	// Latencies span two orders of magnitude between the rates.
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	i := 0
	for _, r := range rates {
		for _, fw := range dialFetchWaits {
			var xys plotter.XYs
			for _, pt := range points {
				if pt.Rate == r && pt.FetchWaitMs == ms(fw) {
					xys = append(xys, plotter.XY{X: pt.LingerMs, Y: pt.P99ms})
				}
			}
			if len(xys) == 0 {
				continue
			}
			line, marks, err := plotter.NewLinePoints(xys)
			if err != nil {
				return fmt.Errorf("chart: %w", err)
			}
			c := plotutil.Color(i)
			line.Color, marks.Color = c, c
			if fw > dialFetchWaits[0] {
				line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			}
			marks.Shape = plotutil.Shape(i)
			p.Add(line, marks)
			p.Legend.Add(fmt.Sprintf("%v/s, fetch wait %v", r, fw), line, marks)
			i++
		}
	}
	target := plotter.NewFunction(func(float64) float64 { return 5 })
	target.Color = color.RGBA{R: 200, A: 255}
	target.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	p.Add(target)
	p.Legend.Add("target p99 at 1,000/s: 5 ms", target)
	if err := p.Save(7*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return nil
}
