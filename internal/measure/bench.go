// Package measure runs the pipeline to measure it: `foodpipe bench`
// (drain speed against a raw COPY, latency and producer accuracy at fixed
// rates, scaling) and `foodpipe soak` (a long run that must stay flat). It
// gathers the figures and judges them; the command line prints them.
package measure

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/order"
	"foodpipe/internal/producer"
	"foodpipe/internal/store"
	"foodpipe/internal/wire"
)

// BenchOptions say what a bench measures.
type BenchOptions struct {
	// Orders are preloaded for each drain.
	Orders int
	// Rates are the fixed rates (orders/s) for latency and producer
	// accuracy, each run for RateFor.
	Rates   []float64
	RateFor time.Duration
	// Scaling also drains with 1, 2 and 3 consumers on 3 and on 6 partitions.
	Scaling bool
	// Autovacuum leaves PostgreSQL's autovacuum on for the orders table.
	Autovacuum bool
	// Prefill, when not 0, also drains into a table of this many orders.
	Prefill int
	// Redelivery also drains onto orders half of which are stored already.
	Redelivery bool
	// ProducerLimit also holds the producer against the client's own limit.
	ProducerLimit bool
	// LatencyDial also sweeps producer linger and consumer fetch wait at
	// 100, 1,000 and 10,000 orders/s, RateFor each, and draws p99 to Chart.
	LatencyDial bool
	DialRates   []float64
	Chart       string
	// LowRate also measures each process's cost (CPU, wake-ups, memory) at
	// LowRates for LowRateFor each, and idle for IdleFor.
	LowRate    bool
	LowRateFor time.Duration
	IdleFor    time.Duration
	// Protocols, when not nil, also runs a kill storm, a hand-over and a
	// member joining under each consumer group protocol, this big.
	Protocols *ProtocolOptions
	// Rounds is how many times the prefill, re-delivery and producer
	// phases run, for their spread.
	Rounds int
	// Out is told each phase's figures as they come.
	Out io.Writer
	Log *slog.Logger
}

// ParseRates reads rates in orders per second, separated by commas
// ("10,1000,10000"), as BenchOptions.Rates and DialRates take them: each
// above 0 and at most a million.
func ParseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 || r > 1e6 {
			return nil, fmt.Errorf("bad rate %q", f)
		}
		out = append(out, r)
	}
	return out, nil
}

// Bench measures the pipeline pl: a raw COPY baseline, a consumer draining
// a preloaded topic, latency and producer accuracy at fixed rates, and
// scaling over consumers and partitions. The broker and the producer run in
// this process; every consumer is a `foodpipe consume` child, so that its
// memory and CPU are its own. It empties the orders table as it goes.
func Bench(ctx context.Context, pl *harness.Pipeline, o BenchOptions) (BenchReport, error) {
	cfg, db, st, out := pl.Config, pl.DB, pl.Store, o.Out
	if !o.Autovacuum {
		if err := st.Bench().SetAutovacuum(ctx, false); err != nil {
			return BenchReport{}, err
		}
		defer st.Bench().SetAutovacuum(context.WithoutCancel(ctx), true) //nolint:errcheck // best effort: the table is the bench's own
	}
	rep := BenchReport{Orders: o.Orders, BatchSize: cfg.BatchSize, Writers: cfg.Writers, Autovacuum: o.Autovacuum}

	b := &bench{cfg: cfg, log: o.Log, out: out, st: st, pl: pl,
		child: func(c *config.Config) { c.LogLevel, c.StatsInterval, c.MetricsAddr = slog.LevelInfo, time.Hour, "" }}
	rep.Machine = BenchMachine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Database: string(db.Source)}
	var err error
	if rep.Machine.PostgreSQL, err = st.ServerVersion(ctx); err != nil {
		return BenchReport{}, err
	}
	fmt.Fprintf(out, "bench: %d orders, batch size %d, %d writers, %d CPUs, PostgreSQL %s (%s)\n",
		o.Orders, cfg.BatchSize, cfg.Writers, rep.Machine.CPUs, rep.Machine.PostgreSQL, db.Source)

	// Preload the topic, as fast as the producer goes, keeping the rows
	// for the COPY baseline.
	rows, took, err := b.preload(ctx, "bench-3p", 3, o.Orders, true)
	if err != nil {
		return BenchReport{}, err
	}
	rep.Producer.MaxRate = float64(o.Orders) / took.Seconds()
	fmt.Fprintf(out, "producer  %d orders preloaded at %.0f/s\n", o.Orders, rep.Producer.MaxRate)

	if o.Rounds < 1 {
		o.Rounds = 1
	}
	// The baseline, the headline drain and each fixed rate run o.Rounds
	// times; the report gives the spread, and the run in the middle.
	var copies []time.Duration
	for range o.Rounds {
		if err := st.Bench().Reset(ctx); err != nil {
			return BenchReport{}, err
		}
		took, err := st.Bench().CopyBaseline(ctx, rows)
		if err != nil {
			return BenchReport{}, err
		}
		copies = append(copies, took)
	}
	slices.Sort(copies)
	copyTook := copies[len(copies)/2]
	rep.CopySpread = spreadOf(mapSlice(copies, func(d time.Duration) float64 { return float64(o.Orders) / d.Seconds() }))
	rep.Copy = rateOf(int64(o.Orders), copyTook)
	fmt.Fprintf(out, "copy      %d rows in %.2fs: %.0f rows/s\n", o.Orders, copyTook.Seconds(), rep.Copy.RowsPerSec)

	// The first drain is the headline: one consumer, three partitions.
	// Scaling adds 2 and 3 consumers, then the same on six partitions.
	consumers := []int{1}
	if o.Scaling {
		consumers = []int{1, 2, 3}
	}
	for _, partitions := range []int32{3, 6} {
		topic := fmt.Sprintf("bench-%dp", partitions)
		if partitions == 6 {
			if !o.Scaling {
				break
			}
			if _, _, err := b.preload(ctx, topic, partitions, o.Orders, false); err != nil {
				return BenchReport{}, err
			}
		}
		for _, c := range consumers {
			r, err := b.drain(ctx, topic, int(partitions), c, int64(o.Orders), rep.Copy.RowsPerSec)
			if err != nil {
				return BenchReport{}, err
			}
			rep.Scaling = append(rep.Scaling, r)
		}
	}
	// The headline drain runs o.Rounds times in all; the one in the middle
	// stands for it.
	heads := []BenchDrain{rep.Scaling[0]}
	for len(heads) < o.Rounds {
		again, err := b.drain(ctx, "bench-3p", 3, 1, int64(o.Orders), rep.Copy.RowsPerSec)
		if err != nil {
			return BenchReport{}, err
		}
		heads = append(heads, again)
	}
	rep.DrainSpread = spreadOf(mapSlice(heads, func(d BenchDrain) float64 { return d.RowsPerSec }))
	rep.RatioSpread = spreadOf(mapSlice(heads, func(d BenchDrain) float64 { return d.RatioToCopy }))
	slices.SortFunc(heads, func(a, b BenchDrain) int { return cmp.Compare(a.RowsPerSec, b.RowsPerSec) })
	rep.Scaling[0] = heads[len(heads)/2]
	rep.Drain = rep.Scaling[0]

	if o.Prefill > 0 {
		p, err := b.prefill(ctx, o, rows, rep.Drain.RowsPerSec)
		if err != nil {
			return BenchReport{}, err
		}
		rep.Prefill = &p
	}
	if o.Redelivery {
		r, err := b.redelivery(ctx, o, rows, rep.Copy.RowsPerSec)
		if err != nil {
			return BenchReport{}, err
		}
		rep.Redelivery = &r
	}
	if o.LatencyDial {
		d, err := b.latencyDial(ctx, o)
		if err != nil {
			return BenchReport{}, err
		}
		rep.Dial = &d
	}
	if o.ProducerLimit {
		p, err := b.producerLimit(ctx, o)
		if err != nil {
			return BenchReport{}, err
		}
		rep.ProducerLimit = &p
	}
	if o.LowRate {
		l, err := b.lowRate(ctx, o)
		if err != nil {
			return BenchReport{}, err
		}
		rep.LowRate = &l
	}
	if o.Protocols != nil {
		p, err := b.protocols(ctx, *o.Protocols)
		if err != nil {
			return BenchReport{}, err
		}
		rep.Protocols = &p
	}
	for _, r := range o.Rates {
		type run struct {
			lat BenchLatency
			pr  BenchProducerRate
		}
		var runs []run
		for range o.Rounds {
			lat, pr, err := b.atRate(ctx, r, o.RateFor)
			if err != nil {
				return BenchReport{}, err
			}
			runs = append(runs, run{lat, pr})
		}
		p99s := spreadOf(mapSlice(runs, func(x run) float64 { return x.lat.P99ms }))
		slices.SortFunc(runs, func(a, b run) int { return cmp.Compare(a.lat.P99ms, b.lat.P99ms) })
		mid := runs[len(runs)/2]
		mid.lat.P99Spread = p99s
		rep.Latency = append(rep.Latency, mid.lat)
		rep.Producer.Fixed = append(rep.Producer.Fixed, mid.pr)
	}
	rep.Targets = JudgeBench(rep)
	return rep, nil
}

type bench struct {
	cfg config.Config
	log *slog.Logger
	out io.Writer
	st  *store.Store
	pl  *harness.Pipeline
	// child changes each consumer child's configuration, the pipeline's
	// (batch size, writers, connections and all) otherwise.
	child  func(*config.Config)
	drains int
}

// preload produces n orders to a new topic as fast as the producer goes and
// returns how long it took and, when keep is set, the orders as rows.
func (b *bench) preload(ctx context.Context, topic string, partitions int32, n int, keep bool) ([]store.Row, time.Duration, error) {
	cfg := b.cfg
	cfg.Topic, cfg.Partitions, cfg.ProducerRate = topic, partitions, 0
	cl, err := b.pl.ProducerClient(ctx, cfg, nil)
	if err != nil {
		return nil, 0, err
	}
	defer cl.Close()
	var mu sync.Mutex
	var rows []store.Row
	if keep {
		rows = make([]store.Row, 0, n)
	}
	p := producer.New(cl, order.NewGenerator(uint64(max(partitions, 0)), nil), producer.Config{Topic: topic, Count: n}, b.log)
	if keep {
		p.OnAck = func(o order.Order, r *kgo.Record) {
			mu.Lock()
			rows = append(rows, store.Row{Order: o, Partition: r.Partition, Offset: r.Offset})
			mu.Unlock()
		}
	}
	start := time.Now()
	if err := p.Run(ctx); err != nil {
		return nil, 0, fmt.Errorf("preload %s: %w", topic, err)
	}
	return rows, time.Since(start), nil
}

// drain starts consumers on a preloaded topic with empty tables and times
// them from the first assignment until every message is covered.
func (b *bench) drain(ctx context.Context, topic string, partitions, consumers int, n int64, copyRate float64) (BenchDrain, error) {
	if err := b.st.Bench().Reset(ctx); err != nil {
		return BenchDrain{}, err
	}
	d, err := b.drainInto(ctx, topic, partitions, consumers, n, n)
	if err != nil {
		return d, err
	}
	d.RatioToCopy = d.RowsPerSec / copyRate
	fmt.Fprintf(b.out, "drain     %d partitions, %d consumer(s): %.0f rows/s (%.2f of COPY), %.1f CPU µs/order, peak RSS %.1f MiB\n",
		partitions, consumers, d.RowsPerSec, d.RatioToCopy, d.CPUMicrosPerOrder, d.PeakRSSMiB)
	return d, nil
}

// drainInto starts consumers on a preloaded topic of n messages and times
// them from the first assignment until every message is covered; the orders
// table must then hold wantRows.
func (b *bench) drainInto(ctx context.Context, topic string, partitions, consumers int, n, wantRows int64) (BenchDrain, error) {
	// Each drain is a new group, so it starts at the beginning of the topic.
	b.drains++
	group := fmt.Sprintf("bench-%s-%d-%d", topic, consumers, b.drains)
	g, err := b.pl.SpawnGroup(topic, group, consumers, b.child)
	if err != nil {
		return BenchDrain{}, err
	}
	defer g.Stop()
	start, err := g.FirstAssigned(ctx, time.Minute)
	if err != nil {
		return BenchDrain{}, err
	}
	if err := b.waitCovered(ctx, g, group, n, time.Minute+time.Duration(n)*100*time.Microsecond); err != nil {
		return BenchDrain{}, err
	}
	took := time.Since(start)
	cpu, rss := g.Stop()
	stored, err := b.st.Count(ctx)
	if err != nil {
		return BenchDrain{}, err
	}
	if stored != wantRows {
		return BenchDrain{}, fmt.Errorf("drain of %s with %d consumers left %d orders in the table, want %d", topic, consumers, stored, wantRows)
	}
	return BenchDrain{Partitions: partitions, Consumers: consumers, BenchRate: rateOf(n, took),
		CPUMicrosPerOrder: float64(cpu.Microseconds()) / float64(n), PeakRSSMiB: rss}, nil
}

// atRate runs one consumer while the producer sends at a fixed rate, then
// reads the end-to-end latency from the table.
func (b *bench) atRate(ctx context.Context, r float64, d time.Duration) (BenchLatency, BenchProducerRate, error) {
	l, pr, _, err := b.atRateWith(ctx, r, d, b.cfg.ProducerLinger, b.cfg.FetchMaxWait)
	if err == nil {
		fmt.Fprintf(b.out, "rate      %v/s for %v: produced %.1f/s (%+.2f%%), latency p50 %.1f ms p99 %.1f ms max %.1f ms, consumer peak RSS %.1f MiB\n",
			r, d, pr.Achieved, pr.ErrorPct, l.P50ms, l.P99ms, l.MaxMs, l.PeakRSSMiB)
	}
	return l, pr, err
}

// atRateWith is atRate with the producer's linger and the consumer's fetch
// wait given; it also returns the dial's figures.
func (b *bench) atRateWith(ctx context.Context, r float64, d, linger, fetchWait time.Duration) (BenchLatency, BenchProducerRate, BenchDialPoint, error) {
	var dp BenchDialPoint
	if err := b.st.Bench().Reset(ctx); err != nil {
		return BenchLatency{}, BenchProducerRate{}, dp, err
	}
	b.drains++
	topic := fmt.Sprintf("bench-rate-%s-%d", strconv.FormatFloat(r, 'f', -1, 64), b.drains)
	cfg := b.cfg
	cfg.Topic, cfg.Partitions, cfg.ProducerLinger, cfg.ProducerRate = topic, 3, linger, r
	cl, err := b.pl.ProducerClient(ctx, cfg, nil)
	if err != nil {
		return BenchLatency{}, BenchProducerRate{}, dp, err
	}
	defer cl.Close()
	group := "bench-" + topic
	g, err := b.pl.SpawnGroup(topic, group, 1, func(c *config.Config) {
		b.child(c)
		c.FetchMaxWait = fetchWait
	})
	if err != nil {
		return BenchLatency{}, BenchProducerRate{}, dp, err
	}
	defer g.Stop()
	if _, err := g.FirstAssigned(ctx, time.Minute); err != nil {
		return BenchLatency{}, BenchProducerRate{}, dp, err
	}
	since := time.Now()
	// The consumer's start (the runtime, the connections, joining the
	// group) is not the orders' cost: CPU per order counts from here.
	startCPU := g.CPUSoFar()
	p := producer.New(cl, order.NewGenerator(uint64(r), nil), producer.Config{Topic: topic, Rate: r, Duration: d,
		Linger: wire.Linger(cfg)}, b.log)
	if err := p.Run(ctx); err != nil {
		return BenchLatency{}, BenchProducerRate{}, dp, fmt.Errorf("produce at %v/s: %w", r, err)
	}
	acked := p.Stats().Acked
	if err := b.waitCovered(ctx, g, group, acked, time.Minute); err != nil {
		return BenchLatency{}, BenchProducerRate{}, dp, err
	}
	cpu, rss := g.Stop()
	lat, err := b.st.Latency(ctx, since)
	if err != nil {
		return BenchLatency{}, BenchProducerRate{}, dp, err
	}
	l := BenchLatency{Rate: r, Orders: lat.N, P50ms: ms(lat.P50), P99ms: ms(lat.P99), MaxMs: ms(lat.Max), PeakRSSMiB: rss}
	achieved := float64(acked) / d.Seconds()
	pr := BenchProducerRate{Target: r, Achieved: achieved, ErrorPct: (achieved - r) / r * 100}
	dp = BenchDialPoint{Rate: r, LingerMs: ms(linger), FetchWaitMs: ms(fetchWait), P50ms: l.P50ms, P99ms: l.P99ms, MaxMs: l.MaxMs,
		BatchesPerSec: float64(lat.Batches) / d.Seconds()}
	if acked > 0 {
		dp.CPUMicrosPerOrder = float64((cpu - startCPU).Microseconds()) / float64(acked)
	}
	return l, pr, dp, nil
}

// waitCovered waits until the group's stored offsets cover n messages. The
// offsets table is read rather than the orders, so that waiting costs
// PostgreSQL next to nothing.
func (b *bench) waitCovered(ctx context.Context, g *harness.Group, group string, n int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		covered, err := b.st.Covered(ctx, group)
		if err != nil {
			return err
		}
		if covered >= n {
			return nil
		}
		if err := g.Exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consumers covered %d of %d messages in %v:\n%s", covered, n, limit, g.LogTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ms is a duration in milliseconds, to a microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func mapSlice[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}
