package cli

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"foodpipe/internal/measure"
	"foodpipe/internal/producer"
	"foodpipe/internal/store/dbtest"
)

// The phases beyond the empty table, tiny and for correctness only: each
// runs its rounds, the re-delivery leaves the stored rows alone, and every
// phase is judged.
func TestBenchMeasuresTheFullTableRedeliveryProducerAndDialPhases(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	t.Setenv(envRunAsCLI, "1")
	chart := filepath.Join(t.TempDir(), "dial.svg")
	r := newRun(t, "DATABASE_URL", dbtest.New(t))
	err := r.do(context.Background(), "bench", "--orders", "4000", "--rates", "50", "--rate-duration", "1s", "--scaling=false",
		"--prefill", "5000", "--redelivery", "--producer-limit", "--rounds", "2",
		"--latency-dial", "--dial-rates", "200", "--chart", chart, "--json")
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, tail(r.stderr.String(), 3000))
	}
	var rep measure.BenchReport
	if err := json.Unmarshal([]byte(r.stdout.String()), &rep); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, r.stdout)
	}
	spreadOK := func(name string, s measure.Spread) {
		t.Helper()
		if len(s.Rounds) != 2 || !(0 < s.Min && s.Min <= s.Median && s.Median <= s.Max) {
			t.Errorf("%s: %+v, want 2 rounds and min ≤ median ≤ max", name, s)
		}
	}
	p := rep.Prefill
	if p == nil || p.Rows != 5000 || p.RatioToEmpty <= 0 || p.Activity.WALBytes <= 0 || p.PeakRSSMiB < 5 {
		t.Fatalf("prefill %+v", p)
	}
	spreadOK("prefill copy", p.Copy)
	spreadOK("prefill drain", p.Drain)
	d := rep.Redelivery
	if d == nil || d.Orders != 4000 || d.AlreadyStored < 1800 || d.AlreadyStored > 2200 || d.Conflicting != 400 || !d.StoredUnchanged {
		t.Fatalf("redelivery %+v", d)
	}
	spreadOK("redelivery drain", d.Drain)
	spreadOK("conflict drain", d.ConflictDrain)
	pl := rep.ProducerLimit
	if pl == nil || pl.Orders != 4000 {
		t.Fatalf("producer limit %+v", pl)
	}
	spreadOK("producer", pl.Producer)
	spreadOK("client", pl.Client)
	dial := rep.Dial
	if dial == nil || len(dial.Points) != 8 || dial.Chart != chart {
		t.Fatalf("latency dial %+v, want 4 lingers × 2 fetch waits at 200/s and the chart", dial)
	}
	for _, p := range dial.Points {
		if p.Rate != 200 || !(0 < p.P50ms && p.P50ms <= p.P99ms && p.P99ms <= p.MaxMs) || p.BatchesPerSec <= 0 || p.CPUMicrosPerOrder <= 0 {
			t.Errorf("dial point %+v", p)
		}
		spreadOK("dial p99", p.P99)
		if !slices.Contains(p.P99.Rounds, p.P99ms) {
			t.Errorf("dial point p99 %.2f is none of its rounds' %v", p.P99ms, p.P99.Rounds)
		}
	}
	if svg, err := os.ReadFile(chart); err != nil || !strings.Contains(string(svg), "<svg") || !strings.Contains(string(svg), "200/s, fetch wait 10ms") {
		t.Errorf("chart %s: %v, %d bytes", chart, err, len(svg))
	}
	names := map[string]bool{}
	for _, tg := range rep.Targets {
		names[tg.Name] = true
	}
	for _, want := range []string{"drain into 5000 orders, vs COPY into them (median)", "re-delivery, half stored, vs COPY (median)",
		"producer vs the client's limit (median)", "consumer peak RSS, full table", "consumer peak RSS, re-delivery"} {
		if !names[want] {
			t.Errorf("no target %q in %+v", want, rep.Targets)
		}
	}
}

// A tiny bench, for correctness only: every phase runs and reports
// consistent numbers. The figures themselves mean nothing at this size.
func TestBenchMeasuresEveryPhase(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	t.Setenv(envRunAsCLI, "1")
	r := newRun(t, "DATABASE_URL", dbtest.New(t))
	err := r.do(context.Background(), "bench", "--orders", "3000", "--rates", "20,300", "--rate-duration", "1s", "--rounds", "2", "--json")
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, tail(r.stderr.String(), 3000))
	}
	var rep measure.BenchReport
	if err := json.Unmarshal([]byte(r.stdout.String()), &rep); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, r.stdout)
	}
	if rep.Orders != 3000 || rep.Copy.Rows != 3000 || rep.Copy.RowsPerSec <= 0 || rep.Machine.CPUs < 1 || rep.Machine.PostgreSQL == "" {
		t.Errorf("report head: %+v", rep)
	}
	want := [][2]int{{3, 1}, {3, 2}, {3, 3}, {6, 1}, {6, 2}, {6, 3}}
	if len(rep.Scaling) != len(want) {
		t.Fatalf("%d drains, want %d: %+v", len(rep.Scaling), len(want), rep.Scaling)
	}
	for i, d := range rep.Scaling {
		if d.Partitions != want[i][0] || d.Consumers != want[i][1] || d.Rows != 3000 {
			t.Errorf("drain %d: %+v, want %v partitions/consumers and 3000 rows", i, d, want[i])
		}
		if d.RowsPerSec <= 0 || math.Abs(d.RatioToCopy-d.RowsPerSec/rep.Copy.RowsPerSec) > 1e-9 {
			t.Errorf("drain %d rate %.0f, ratio %.3f", i, d.RowsPerSec, d.RatioToCopy)
		}
		// A consumer is a real process: it uses CPU and holds some memory.
		if d.CPUMicrosPerOrder <= 0 || d.PeakRSSMiB < 5 || d.PeakRSSMiB > 1024 {
			t.Errorf("drain %d: %.1f CPU µs/order, peak RSS %.1f MiB", i, d.CPUMicrosPerOrder, d.PeakRSSMiB)
		}
	}
	if rep.Drain != rep.Scaling[0] {
		t.Errorf("the headline drain is not the one-consumer drain")
	}
	if rep.Producer.MaxRate <= 0 || len(rep.Producer.Fixed) != 2 || len(rep.Latency) != 2 {
		t.Fatalf("producer %+v, latency %+v", rep.Producer, rep.Latency)
	}
	for i, target := range []float64{20, 300} {
		p, l := rep.Producer.Fixed[i], rep.Latency[i]
		if p.Target != target || math.Abs(p.Achieved-target) > target*0.05+1 {
			t.Errorf("producer at %v/s achieved %v", target, p.Achieved)
		}
		if l.Rate != target || l.Orders != int64(math.Round(p.Achieved)) {
			t.Errorf("latency at %v/s over %d orders, producer acknowledged %.0f", target, l.Orders, p.Achieved)
		}
		if !(0 < l.P50ms && l.P50ms <= l.P99ms && l.P99ms <= l.MaxMs) || l.PeakRSSMiB < 5 {
			t.Errorf("latency at %v/s: %+v", target, l)
		}
	}
	names := map[string]bool{}
	for _, tg := range rep.Targets {
		names[tg.Name] = true
		if strings.HasPrefix(tg.Name, "consumer peak RSS, every drain (largest: ") {
			names["consumer peak RSS, every drain"] = true
		}
	}
	if !names["drain, 1 consumer, vs raw COPY"] || !names["consumer peak RSS, the drain"] || !names["consumer peak RSS, every drain"] {
		t.Errorf("targets: %+v", rep.Targets)
	}
}

func TestBenchRefusesADatabaseWithOrders(t *testing.T) {
	url := dbtest.New(t)
	migrate(t, url)
	addr := broker(t)
	if err := newRun(t, "KAFKA_BROKERS", addr, "DATABASE_URL", url).do(context.Background(), "produce", "--count", "3", "--rate", "0"); err != nil {
		t.Fatal(err)
	}
	consumeUntil(t, []string{"KAFKA_BROKERS", addr, "DATABASE_URL", url}, func() bool { n, _ := countRows(t, url); return n == 3 })
	r := newRun(t, "DATABASE_URL", url)
	err := r.do(context.Background(), "bench", "--orders", "10")
	if err == nil || !strings.Contains(err.Error(), "holds 3 orders") {
		t.Fatalf("bench on a database with orders: %v", err)
	}
}

// The low-rate phase measures each process of the pipeline apart, at every
// low rate and idle: real processes use CPU, wake up and hold memory (idle,
// they may not wake at all); an idle one costs less than one at 1,000 orders/s; the orders' latency is
// read for every rate but idle; and the phase is held against its targets.
func TestBenchLowRateMeasuresEachProcessAtEachRateAndIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	t.Setenv(envRunAsCLI, "1")
	r := newRun(t, "DATABASE_URL", dbtest.New(t))
	err := r.do(context.Background(), "bench", "--orders", "1000", "--rates", "20", "--rate-duration", "1s", "--scaling=false",
		"--low-rate", "--low-rate-duration", "2s", "--idle-duration", "2s", "--rounds", "1", "--json")
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, tail(r.stderr.String(), 3000))
	}
	var rep measure.BenchReport
	if err := json.Unmarshal([]byte(r.stdout.String()), &rep); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, r.stdout)
	}
	l := rep.LowRate
	if l == nil || l.Window != 2 || l.Idle != 2 || len(l.Points) != len(measure.LowRates)+1 {
		t.Fatalf("low rate: %+v", l)
	}
	cpuOf := map[float64]map[string]float64{}
	for i, p := range l.Points {
		want := []string{"broker", "consumer", "analytics", "producer"}
		if i == len(l.Points)-1 {
			if p.Rate != 0 {
				t.Errorf("the last point is at %v/s, want idle", p.Rate)
			}
			want = want[:3]
		} else if p.Rate != measure.LowRates[i] {
			t.Errorf("point %d at %v/s, want %v/s", i, p.Rate, measure.LowRates[i])
		}
		var got []string
		cpuOf[p.Rate] = map[string]float64{}
		for _, c := range p.Processes {
			got = append(got, c.Name)
			cpuOf[p.Rate][c.Name] = c.CPUPct.Median
			// Idle, a process may sleep through a short window: not one
			// wake-up in 2 s is what the phase is for.
			if c.CPUPct.Median < 0 || c.WakeupsPerSec.Median < 0 || (p.Rate > 0 && c.WakeupsPerSec.Median == 0) ||
				c.RSSMiB.Median < 5 || c.RSSMiB.Median > 1024 {
				t.Errorf("%v/s, %s: %+v", p.Rate, c.Name, c)
			}
			if (p.Rate > 0) != (c.CPUMicrosPerOrder.Median > 0) && c.CPUPct.Median > 0 {
				t.Errorf("%v/s, %s: %.1f CPU µs per order", p.Rate, c.Name, c.CPUMicrosPerOrder.Median)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%v/s: processes %v, want %v", p.Rate, got, want)
		}
		if p.Rate > 0 && !(0 < p.P50ms.Median && p.P50ms.Median <= p.P99ms.Median) {
			t.Errorf("%v/s: latency p50 %+v p99 %+v", p.Rate, p.P50ms, p.P99ms)
		}
		// The default linger is auto: what the producer chose at the rate.
		if want := float64(producer.LingerFor(p.Rate)) / float64(time.Millisecond); p.LingerMs != want {
			t.Errorf("%v/s: producer linger %v ms, want %v ms", p.Rate, p.LingerMs, want)
		}
	}
	if cpuOf[1000]["consumer"] <= cpuOf[0]["consumer"] || cpuOf[1000]["producer"] <= 0 {
		t.Errorf("the consumer took %.2f %% of a core at 1,000/s and %.2f %% idle; the producer %.2f %% at 1,000/s",
			cpuOf[1000]["consumer"], cpuOf[0]["consumer"], cpuOf[1000]["producer"])
	}
	var targets []string
	for _, tg := range rep.Targets {
		if strings.Contains(tg.Name, "CPU") || strings.Contains(tg.Name, "low rates") || strings.Contains(tg.Name, "low-rate phase") {
			targets = append(targets, tg.Name)
		}
	}
	if len(targets) != 9 {
		t.Errorf("low-rate targets %q, want 9", targets)
	}
}

// The protocols phase, small: each scenario runs under classic and then
// under KIP-848, its changes are counted and its stalls measured, and every
// order is stored once whatever the group went through.
func TestBenchProtocolsRunsEachScenarioUnderBothProtocols(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	t.Setenv(envRunAsCLI, "1")
	r := newRun(t, "DATABASE_URL", dbtest.New(t))
	const orders, kills = 3000, 4
	err := r.do(context.Background(), "bench", "--orders", "1000", "--rates", "20", "--rate-duration", "1s", "--scaling=false", "--rounds", "1",
		"--protocols", "--protocol-orders", "3000", "--protocol-rate", "500", "--kills", "4", "--session-timeout", "6s", "--json")
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, tail(r.stderr.String(), 3000))
	}
	var rep measure.BenchReport
	if err := json.Unmarshal([]byte(r.stdout.String()), &rep); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, r.stdout)
	}
	p := rep.Protocols
	if p == nil || p.Orders != orders || p.Rate != 500 || p.Kills != kills || p.SessionTimeout != 6 || p.Partitions != 3 {
		t.Fatalf("protocols: %+v", p)
	}
	if len(p.Runs) != 6 {
		t.Fatalf("%d runs, want 3 scenarios under 2 protocols: %+v", len(p.Runs), p.Runs)
	}
	targets := map[string]bool{}
	for _, tg := range rep.Targets {
		targets[tg.Name] = true
	}
	for i, run := range p.Runs {
		protocol, scenario := []string{"classic", "consumer"}[i/3], measure.ProtocolScenarios[i%3]
		if run.Protocol != protocol || run.Scenario != scenario {
			t.Errorf("run %d is %s under %s, want %s under %s", i, run.Scenario, run.Protocol, scenario, protocol)
		}
		members, changes := 3, 1
		switch scenario {
		case measure.ScenarioStorm:
			changes = kills
		case measure.ScenarioJoin:
			members = 2
		}
		if run.Members != members || run.Changes != changes || len(run.Stopped) != changes {
			t.Errorf("%s, %s: %d members, %d changes, stopped per change %v; want %d members, %d changes", protocol, scenario,
				run.Members, run.Changes, run.Stopped, members, changes)
		}
		for _, n := range run.Stopped {
			if n < 0 || n > 3 {
				t.Errorf("%s, %s: %d partitions of 3 stopped by a change", protocol, scenario, n)
			}
		}
		if !run.EveryOrderOnce(orders) || run.Stored != orders {
			t.Errorf("%s, %s: %d of %d produced orders stored, %d doubles, %d dead letters", protocol, scenario, run.Stored, run.Produced, run.Doubles, run.DeadLetters)
		}
		// A member that leaves hands its partitions over: the one it owned
		// waits for a moment at least, and the watch sees it.
		if scenario == measure.ScenarioHandOver && run.LongestPartitionStall <= 0 {
			t.Errorf("%s, %s: no partition stalled", protocol, scenario)
		}
		if run.LongestStall < 0 || run.LongestPartitionStall < 0 || run.FlowingAgain < 0 || run.Took <= float64(orders)/500 {
			t.Errorf("%s, %s: %+v", protocol, scenario, run)
		}
		if !targets["every order stored once, "+protocol+", "+scenario] {
			t.Errorf("no target for every order once, %s, %s: %+v", protocol, scenario, rep.Targets)
		}
	}
	if !strings.Contains(r.stderr.String(), "protocol  consumer, member joins: longest stall") {
		t.Errorf("the phase's progress lines are not on stderr:\n%s", tail(r.stderr.String(), 3000))
	}
}
