package report

import (
	"bytes"
	"strings"
	"testing"

	"foodpipe/internal/measure"
)

func TestBenchTableShowsTheTargets(t *testing.T) {
	rep := measure.BenchReport{Orders: 10, BatchSize: 5000, Writers: 1, Copy: measure.BenchRate{RowsPerSec: 100000},
		Scaling:  []measure.BenchDrain{{Partitions: 3, Consumers: 1, BenchRate: measure.BenchRate{RowsPerSec: 85000}, RatioToCopy: 0.85, CPUMicrosPerOrder: 5, PeakRSSMiB: 50}},
		Latency:  []measure.BenchLatency{{Rate: 1000, P50ms: 3, P99ms: 30, MaxMs: 40, PeakRSSMiB: 20}},
		Producer: measure.BenchProducer{MaxRate: 300000, Fixed: []measure.BenchProducerRate{{Target: 1000, Achieved: 999, ErrorPct: -0.1}}}}
	rep.Drain = rep.Scaling[0]
	rep.Machine.CPUs = 1
	rep.DrainSpread.Rounds = []float64{85000}
	rep.Targets = measure.JudgeBench(rep)
	var b bytes.Buffer
	PrintBench(&b, rep)
	out := b.String()
	for _, want := range []string{"met     drain, 1 consumer, vs raw COPY: 0.85 (want ≥ 0.80)",
		"MISSED  end-to-end p99 at 1,000 orders/s: 30.0 ms (want ≤ 5 ms)",
		"met     consumer peak RSS, every drain (largest: 3 partitions, 1 consumer): 50.0 MiB (want ≤ 64 MiB)", "85000", "300000 orders/s",
		"foodpipe bench: 10 orders, batch size 5000, 1 writer per consumer, autovacuum off; 1 CPU,", "over 1 round (min / median / max)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
