package measure

// The latency dial: how the producer's linger and the consumer's fetch wait
// trade latency for batching, at a low, a middle and a high rate.

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"time"
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
	// P99 is the p99 of every round; the round with the median p99 gives
	// the other figures.
	P99 Spread `json:"p99_ms_rounds"`
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
// o.RateFor each, o.Rounds times, and draws the median p99 against linger.
func (b *bench) latencyDial(ctx context.Context, o BenchOptions) (BenchDial, error) {
	var dial BenchDial
	for _, r := range o.DialRates {
		for _, fw := range dialFetchWaits {
			for _, linger := range dialLingers {
				var rounds []BenchDialPoint
				var p99s []float64
				for range max(o.Rounds, 1) {
					_, _, p, err := b.atRateWith(ctx, r, o.RateFor, linger, fw)
					if err != nil {
						return dial, err
					}
					rounds, p99s = append(rounds, p), append(p99s, p.P99ms)
					fmt.Fprintf(b.out, "dial      %v/s, linger %v, fetch wait %v: p50 %.1f ms p99 %.1f ms max %.1f ms, %.0f batches/s, %.1f CPU µs/order\n",
						r, linger, fw, p.P50ms, p.P99ms, p.MaxMs, p.BatchesPerSec, p.CPUMicrosPerOrder)
				}
				slices.SortFunc(rounds, func(a, b BenchDialPoint) int { return cmp.Compare(a.P99ms, b.P99ms) })
				p := rounds[(len(rounds)-1)/2]
				p.P99 = spreadOf(p99s)
				dial.Points = append(dial.Points, p)
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
// wait, as an SVG chart to path (see chart.go).
func drawDial(points []BenchDialPoint, rates []float64, path string) error {
	c := chart{Title: "end-to-end p99 against producer linger", XLabel: "producer linger (ms)", YLabel: "p99 latency (ms, log scale)",
		Target: 5, TargetLabel: "target p99 at 1,000/s: 5 ms"}
	for _, r := range rates {
		for _, fw := range dialFetchWaits {
			sr := series{Name: fmt.Sprintf("%v/s, fetch wait %v", r, fw), Dashed: fw > dialFetchWaits[0]}
			for _, pt := range points {
				if pt.Rate == r && pt.FetchWaitMs == ms(fw) {
					sr.X, sr.Y = append(sr.X, pt.LingerMs), append(sr.Y, pt.P99ms)
				}
			}
			if len(sr.X) > 0 {
				c.Series = append(c.Series, sr)
			}
		}
	}
	if err := os.WriteFile(path, c.svg(), 0o644); err != nil { //nolint:gosec // a chart for the user to open, like any report
		return fmt.Errorf("chart: %w", err)
	}
	return nil
}
