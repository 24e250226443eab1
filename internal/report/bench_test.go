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

// The protocols phase reads as one table, each scenario under classic and
// then under KIP-848, and each run is judged.
func TestBenchShowsEachScenarioUnderBothProtocolsSideBySide(t *testing.T) {
	p := &measure.BenchProtocols{Partitions: 3, Orders: 100, Rate: 50, Kills: 4, SessionTimeout: 10, StopAtLeast: 1, ChangeWindow: 6}
	for _, s := range []string{measure.ScenarioJoin, measure.ScenarioStorm} {
		for _, proto := range []string{"classic", "consumer"} {
			p.Runs = append(p.Runs, measure.BenchProtocolRun{Protocol: proto, Scenario: s, Members: 3, Changes: 4, LongestStall: 12.5,
				LongestPartitionStall: 13, Stopped: []int{3, 1, 0, 0}, FlowingAgain: 2, Produced: 100, Stored: 100})
		}
	}
	p.Runs[1].Doubles = 2
	rep := measure.BenchReport{Protocols: p, Targets: measure.JudgeBench(measure.BenchReport{Protocols: p})}
	var b bytes.Buffer
	PrintBench(&b, rep)
	out := b.String()
	for _, want := range []string{"group protocols, 3 partitions, session timeout 10s, each scenario 100 orders at 50/s, the storm 4 kills",
		"MISSED  every order stored once, consumer, member joins: 100 of 100 produced stored, 2 doubles, 0 dead letters (want 100 once, no doubles)",
		"met     every order stored once, classic, kill storm",
		"met     longest stall, classic, kill storm: 12.5s (want ≤ 15.0s)",
		"met     flowing again after the last change, consumer, kill storm: 2.0s (want ≤ 18.3s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	// The rows, as words: the storm first (the order the scenarios run
	// in), each scenario under classic, then consumer.
	var rows []string
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 3 && (f[0] == "kill" || f[0] == "member") {
			rows = append(rows, strings.Join(f, " "))
		}
	}
	want := []string{
		"kill storm classic 3 4 12.5 13.0 1.0 / 3 2.0 100 / 100 0",
		"kill storm consumer 3 4 12.5 13.0 1.0 / 3 2.0 100 / 100 0",
		"member joins classic 3 4 12.5 13.0 1.0 / 3 2.0 100 / 100 0",
		"member joins consumer 3 4 12.5 13.0 1.0 / 3 2.0 100 / 100 2",
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}
