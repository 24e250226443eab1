package measure

// The cost of the pipeline at the rates it mostly runs at: a few orders a
// second on a small machine shared with other work, where what matters is
// not how fast it can go but how little it takes.

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/kafka"
	"foodpipe/internal/store"
	"foodpipe/internal/wire"
)

// LowRates are the rates the low-rate phase measures, in orders per second;
// after them it measures the pipeline idle (0/s).
var LowRates = []float64{10, 100, 1000}

// lowRateWarmUp is how long each run goes before its window opens: the
// members join their groups and the first fetches and batches settle.
const lowRateWarmUp = 5 * time.Second

// BenchLowRate is what the pipeline's processes cost at low rates and idle:
// each a separate process (`foodpipe broker`, `produce`, `consume`,
// `analytics run`), measured over the same window.
type BenchLowRate struct {
	// Window is how long each rate was measured, after a warm-up; Idle how
	// long the idle pipeline was.
	Window float64 `json:"window_s"`
	Idle   float64 `json:"idle_s"`
	// Points are the rates in LowRates, then 0 (idle, with no producer).
	Points []BenchLowRatePoint `json:"points"`
}

// BenchLowRatePoint is one rate, each figure over the rounds.
type BenchLowRatePoint struct {
	Rate float64 `json:"rate"`
	// LingerMs is the producer's linger at this rate (PRODUCER_LINGER, or
	// what auto chose for the rate; absent when idle).
	LingerMs  float64            `json:"linger_ms,omitempty"`
	Processes []BenchProcessCost `json:"processes"`
	// Latency of the orders produced in the window, from the orders table
	// once every order of the round is stored (absent when idle).
	P50ms Spread `json:"p50_ms"`
	P99ms Spread `json:"p99_ms"`
}

// BenchProcessCost is what one process took over the window.
type BenchProcessCost struct {
	Name string `json:"name"`
	// CPUPct is user and system CPU as a percentage of one core.
	CPUPct Spread `json:"cpu_pct_of_a_core"`
	// CPUMicrosPerOrder is that CPU per order produced in the window (0 idle).
	CPUMicrosPerOrder Spread `json:"cpu_us_per_order"`
	// WakeupsPerSec are context switches of all its threads per second.
	WakeupsPerSec Spread `json:"wakeups_per_s"`
	// RSSMiB is its resident set at the end of the window.
	RSSMiB Spread `json:"rss_mib"`
}

// lowRate runs the low-rate phase: every rate, then idle, o.Rounds times each.
func (b *bench) lowRate(ctx context.Context, o BenchOptions) (BenchLowRate, error) {
	rep := BenchLowRate{Window: o.LowRateFor.Seconds(), Idle: o.IdleFor.Seconds()}
	// A broker of its own, as a process, so that its cost is counted apart
	// from this one's.
	addr, err := harness.FreeLoopback()
	if err != nil {
		return rep, err
	}
	broker, err := b.pl.Spawn("lowrate-broker", b.pl.ChildEnv(func(c *config.Config) { c.LogLevel = slog.LevelWarn }),
		"broker", "--listen", addr)
	if err != nil {
		return rep, err
	}
	defer broker.Stop(5 * time.Second) //nolint:errcheck // the phase is over; how it ended does not matter
	if err := broker.WaitListening(ctx, addr, 20*time.Second); err != nil {
		return rep, err
	}
	for _, r := range append(append([]float64(nil), LowRates...), 0) {
		window := o.LowRateFor
		if r == 0 {
			window = o.IdleFor
		}
		var rounds []lowRateRound
		for range o.Rounds {
			rr, err := b.lowRateRound(ctx, addr, broker, r, window)
			if err != nil {
				return rep, err
			}
			rounds = append(rounds, rr)
		}
		p := pointOf(r, rounds)
		at := b.cfg
		at.ProducerRate = r
		linger := wire.Linger(at) // what the producer child lingers
		if r > 0 {
			p.LingerMs = ms(linger)
		}
		rep.Points = append(rep.Points, p)
		fmt.Fprintf(b.out, "low rate  %v/s for %v", r, window)
		if r > 0 {
			fmt.Fprintf(b.out, ", producer linger %v", linger)
		}
		fmt.Fprint(b.out, ":")
		for _, c := range p.Processes {
			fmt.Fprintf(b.out, " %s %.2f%% of a core, %.0f wake-ups/s, %.1f MiB;", c.Name, c.CPUPct.Median, c.WakeupsPerSec.Median, c.RSSMiB.Median)
		}
		if r > 0 {
			fmt.Fprintf(b.out, " p99 %.1f ms", p.P99ms.Median)
		}
		fmt.Fprintln(b.out)
	}
	return rep, nil
}

// lowRateRound is one round of one rate: the processes' costs and the latency.
type lowRateRound struct {
	costs    []processCost
	p50, p99 float64
}

type processCost struct {
	name                      string
	cpuPct, perOrder, wakeups float64
	rssMiB                    float64
}

// lowRateRound starts a consumer, an analytics member and (above 0/s) a
// producer on a topic of their own, lets them warm up, and measures each
// process, and the broker, over window.
func (b *bench) lowRateRound(ctx context.Context, brokerAddr string, broker *harness.Process, r float64, window time.Duration) (lowRateRound, error) {
	var rr lowRateRound
	if err := b.st.Bench().Reset(ctx); err != nil {
		return rr, err
	}
	b.drains++
	topic := fmt.Sprintf("lowrate-%s-%d", strconv.FormatFloat(r, 'f', -1, 64), b.drains)
	edit := func(c *config.Config) {
		b.child(c)
		c.Brokers, c.Topic, c.Partitions = []string{brokerAddr}, topic, 3
		c.Group, c.AnalyticsGroup = "bench-"+topic, "bench-analytics-"+topic
		c.ProducerRate = r
	}
	g, err := b.pl.SpawnGroup(topic, "bench-"+topic, 1, edit)
	if err != nil {
		return rr, err
	}
	defer g.Stop()
	if _, err := g.FirstAssigned(ctx, time.Minute); err != nil {
		return rr, err
	}
	procs := []*harness.Process{broker, g.Kids[0]}
	names := []string{"broker", "consumer"}
	analytics, err := b.pl.Spawn("lowrate-analytics", b.pl.ChildEnv(edit), "analytics", "run", "--id", "lowrate-analytics")
	if err != nil {
		return rr, err
	}
	defer analytics.Stop(5 * time.Second) //nolint:errcheck // measured already
	procs, names = append(procs, analytics), append(names, "analytics")
	var prod *harness.Process
	if r > 0 {
		// It runs until it is stopped after the window (its duration only
		// bounds a round that never gets there), so the window sees a
		// steady producer.
		prod, err = b.pl.Spawn("lowrate-producer", b.pl.ChildEnv(edit), "produce", "--duration", (lowRateWarmUp + window + 2*time.Minute).String())
		if err != nil {
			return rr, err
		}
		defer prod.Stop(5 * time.Second) //nolint:errcheck // measured already
		procs, names = append(procs, prod), append(names, "producer")
		// The warm-up starts once orders flow: on a loaded machine a
		// producer can take seconds to start and find its partitions.
		if err := b.firstStored(ctx, prod); err != nil {
			return rr, fmt.Errorf("low rate %v/s: %w", r, err)
		}
	}
	select {
	case <-ctx.Done():
		return rr, ctx.Err()
	case <-time.After(lowRateWarmUp):
	}
	since := time.Now()
	cpu0, sw0 := make([]time.Duration, len(procs)), make([]int64, len(procs))
	for i, p := range procs {
		cpu0[i], sw0[i] = p.CPUSoFar(), p.ContextSwitches()
	}
	select {
	case <-ctx.Done():
		return rr, ctx.Err()
	case <-time.After(window):
	}
	took := time.Since(since)
	orders := r * took.Seconds()
	for i, p := range procs {
		if p.Ended() {
			return rr, fmt.Errorf("low rate %v/s: the %s ended during the window: %w\n%s", r, names[i], p.Err(), p.LogTail(20))
		}
		cpu := (p.CPUSoFar() - cpu0[i]).Seconds()
		c := processCost{name: names[i], cpuPct: cpu / took.Seconds() * 100,
			wakeups: float64(p.ContextSwitches()-sw0[i]) / took.Seconds(), rssMiB: p.RSSMiB()}
		if orders > 0 {
			c.perOrder = cpu * 1e6 / orders
		}
		rr.costs = append(rr.costs, c)
	}
	if r > 0 {
		lat, err := b.latencyOfAll(ctx, brokerAddr, topic, prod, since)
		if err != nil {
			return rr, fmt.Errorf("low rate %v/s: %w", r, err)
		}
		rr.p50, rr.p99 = ms(lat.P50), ms(lat.P99)
	}
	return rr, nil
}

// lowRateSettle bounds the wait for a round's first order to be stored,
// and, after its window, for every order it produced to be stored.
const lowRateSettle = 30 * time.Second

// firstStored waits until the round's first order is stored.
func (b *bench) firstStored(ctx context.Context, prod *harness.Process) error {
	by := time.Now().Add(lowRateSettle)
	for {
		n, err := b.st.Count(ctx)
		if err != nil || n > 0 {
			return err
		}
		if prod.Ended() {
			return fmt.Errorf("the producer ended before an order was stored: %w\n%s", prod.Err(), prod.LogTail(20))
		}
		if time.Now().After(by) {
			return fmt.Errorf("no order stored %v after the producer started", lowRateSettle)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// latencyOfAll stops the producer and gives the latency of the orders
// created since the window began, once every order of the round's topic is
// stored: an order stored late counts, late, rather than being left out
// because the window ended before its member stored it (on a loaded
// machine the p99 would read low, or no order at all be measured).
func (b *bench) latencyOfAll(ctx context.Context, brokerAddr, topic string, prod *harness.Process, since time.Time) (store.Latency, error) {
	by := time.Now().Add(lowRateSettle)
	// Stopped, the producer flushes what it holds and exits; what it
	// produced is in the topic.
	_ = prod.Stop(5 * time.Second)
	cfg := b.cfg
	cfg.Brokers = []string{brokerAddr}
	adm, closeAdm, err := wire.Admin(ctx, cfg, b.log)
	if err != nil {
		return store.Latency{}, err
	}
	defer closeAdm()
	for {
		produced, err := kafka.Messages(ctx, adm, topic)
		if err != nil {
			return store.Latency{}, err
		}
		stored, err := b.st.Count(ctx)
		if err != nil {
			return store.Latency{}, err
		}
		if stored >= produced || time.Now().After(by) {
			break
		}
		select {
		case <-ctx.Done():
			return store.Latency{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	lat, err := b.st.Latency(ctx, since)
	if err == nil && lat.N == 0 {
		err = fmt.Errorf("no order created in the window was stored within %v of its end", lowRateSettle)
	}
	return lat, err
}

// pointOf gathers the rounds of one rate, process by process.
func pointOf(r float64, rounds []lowRateRound) BenchLowRatePoint {
	p := BenchLowRatePoint{Rate: r}
	for i, c := range rounds[0].costs {
		each := func(f func(processCost) float64) Spread {
			return spreadOf(mapSlice(rounds, func(rr lowRateRound) float64 { return f(rr.costs[i]) }))
		}
		p.Processes = append(p.Processes, BenchProcessCost{Name: c.name,
			CPUPct:            each(func(c processCost) float64 { return c.cpuPct }),
			CPUMicrosPerOrder: each(func(c processCost) float64 { return c.perOrder }),
			WakeupsPerSec:     each(func(c processCost) float64 { return c.wakeups }),
			RSSMiB:            each(func(c processCost) float64 { return c.rssMiB })})
	}
	if r > 0 {
		p.P50ms = spreadOf(mapSlice(rounds, func(rr lowRateRound) float64 { return rr.p50 }))
		p.P99ms = spreadOf(mapSlice(rounds, func(rr lowRateRound) float64 { return rr.p99 }))
	}
	return p
}

// lowRateTargets holds the low-rate phase against what a small shared
// machine affords (a t2.small earns 20 % of one core).
func lowRateTargets(l *BenchLowRate) []BenchTarget {
	var ts []BenchTarget
	want := func(rate float64, name string, most float64) {
		for _, p := range l.Points {
			if p.Rate != rate {
				continue
			}
			for _, c := range p.Processes {
				if c.Name != name {
					continue
				}
				at := fmt.Sprintf("at %v orders/s", rate)
				if rate == 0 {
					at = "idle"
				}
				ts = append(ts, BenchTarget{Name: fmt.Sprintf("%s CPU %s (median)", name, at), Want: fmt.Sprintf("≤ %v %% of a core", most),
					Got: fmt.Sprintf("%.2f %%", c.CPUPct.Median), Met: c.CPUPct.Median <= most})
			}
		}
	}
	want(100, "consumer", 2)
	want(100, "producer", 1)
	want(10, "consumer", 0.3)
	want(10, "producer", 0.3)
	for _, name := range []string{"consumer", "analytics", "broker"} {
		want(0, name, 0.1)
	}
	for _, p := range l.Points {
		if p.Rate == 1000 {
			ts = append(ts, BenchTarget{Name: "end-to-end p99 at 1000 orders/s, low-rate phase (median)", Want: "≤ 5 ms",
				Got: fmt.Sprintf("%.1f ms", p.P99ms.Median), Met: p.P99ms.Median <= 5})
		}
	}
	most := 0.0
	for _, p := range l.Points {
		for _, c := range p.Processes {
			if c.Name != "broker" {
				most = max(most, c.RSSMiB.Max)
			}
		}
	}
	ts = append(ts, BenchTarget{Name: "RSS of each foodpipe process at low rates", Want: "≤ 64 MiB",
		Got: fmt.Sprintf("%.1f MiB", most), Met: most <= 64})
	return ts
}
