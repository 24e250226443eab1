package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/kafka"
	"foodpipe/internal/order"
	"foodpipe/internal/producer"
	"foodpipe/internal/store"
)

// BenchReport is everything `foodpipe bench` measured in one run.
type BenchReport struct {
	Machine   BenchMachine `json:"machine"`
	Orders    int          `json:"orders"`
	BatchSize int          `json:"batch_size"`
	Writers   int          `json:"writers"`
	// Autovacuum says whether PostgreSQL's autovacuum was left on.
	Autovacuum bool           `json:"autovacuum"`
	Copy       BenchRate      `json:"copy"`
	Drain      BenchDrain     `json:"drain"`
	Producer   BenchProducer  `json:"producer"`
	Latency    []BenchLatency `json:"latency"`
	Scaling    []BenchDrain   `json:"scaling"`
	Targets    []BenchTarget  `json:"targets"`
}

// BenchMachine says where the figures come from.
type BenchMachine struct {
	CPUs       int    `json:"cpus"`
	Go         string `json:"go"`
	PostgreSQL string `json:"postgresql"`
	Database   string `json:"database"`
}

// BenchRate is rows stored in a time.
type BenchRate struct {
	Rows       int64   `json:"rows"`
	Seconds    float64 `json:"seconds"`
	RowsPerSec float64 `json:"rows_per_s"`
}

// BenchDrain is consumers draining a preloaded topic into empty tables.
type BenchDrain struct {
	Partitions int `json:"partitions"`
	Consumers  int `json:"consumers"`
	BenchRate
	// RatioToCopy is RowsPerSec over the raw COPY's.
	RatioToCopy float64 `json:"ratio_to_copy"`
	// CPUMicrosPerOrder is the consumers' user and system CPU per order
	// (PostgreSQL's own CPU is not in it).
	CPUMicrosPerOrder float64 `json:"cpu_us_per_order"`
	// PeakRSSMiB is the largest consumer's peak resident set.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// BenchProducer is the producer's highest rate and its accuracy at fixed rates.
type BenchProducer struct {
	MaxRate float64             `json:"max_rate"`
	Fixed   []BenchProducerRate `json:"fixed"`
}

// BenchProducerRate is one fixed rate: asked, achieved (acknowledged orders
// over the run's duration) and the error in percent.
type BenchProducerRate struct {
	Target   float64 `json:"target"`
	Achieved float64 `json:"achieved"`
	ErrorPct float64 `json:"error_pct"`
}

// BenchLatency is end-to-end latency (created_at to processed_at) at one rate.
type BenchLatency struct {
	Rate       float64 `json:"rate"`
	Orders     int64   `json:"orders"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	PeakRSSMiB float64 `json:"consumer_peak_rss_mib"`
}

// BenchTarget is one target of the performance goals and whether it was met.
type BenchTarget struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// ErrBenchTargetMissed is returned with --check when a target is not met.
var ErrBenchTargetMissed = errors.New("bench: a target was missed")

// runBench measures the pipeline: a raw COPY baseline, a consumer draining
// a preloaded topic, latency and producer accuracy at fixed rates, and
// scaling over consumers and partitions. The broker and the producer run in
// this process; every consumer is a `foodpipe consume` child, so that its
// memory and CPU are its own.
func runBench(ctx context.Context, env *Env, args []string) error {
	f, err := newFlags(env, "bench")
	if err != nil {
		return err
	}
	orders := f.Int("orders", 500_000, "orders preloaded for each drain")
	ratesFlag := f.String("rates", "10,1000,10000", "fixed rates (orders/s) for latency and producer accuracy")
	rateFor := f.Duration("rate-duration", 10*time.Second, "how long each fixed rate runs")
	scaling := f.Bool("scaling", true, "also drain with 1, 2 and 3 consumers on 3 and on 6 partitions")
	asJSON := f.Bool("json", false, "print the report as one JSON object")
	check := f.Bool("check", false, "exit non-zero when a target is missed")
	autovacuum := f.Bool("autovacuum", false, "leave PostgreSQL's autovacuum on for the orders table while measuring")
	f.bind("batch-size", "CONSUMER_BATCH_SIZE")
	f.bind("writers", "CONSUMER_WRITERS")
	userDB, err := f.ownPipelineFlags()
	if err != nil {
		return err
	}
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	rates, err := parseRates(*ratesFlag)
	if err != nil || *orders < 1 || *rateFor < 100*time.Millisecond {
		return fmt.Errorf("%w: bench needs --orders of at least 1, --rates as positive numbers separated by commas, --rate-duration of at least 100ms", ErrUsage)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the foodpipe binary: %w", err)
	}
	out := env.Stdout
	if *asJSON {
		out = env.Stderr
	}

	broker, err := kafka.StartBroker(kafka.BrokerOptions{Listen: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	defer broker.Close()
	cfg.Brokers = []string{broker.Addr()}
	db, st, err := openOwnStore(ctx, env, &cfg, userDB(), "foodpipe_bench")
	if err != nil {
		return err
	}
	defer db.Close()
	defer st.Close()
	if n, err := st.Count(ctx); err != nil {
		return err
	} else if n > 0 && userDB() {
		return fmt.Errorf("bench empties the orders table, and %s holds %d orders: give it a database of its own", config.RedactURL(db.URL), n)
	}

	if !*autovacuum {
		if err := st.Bench().SetAutovacuum(ctx, false); err != nil {
			return err
		}
		defer st.Bench().SetAutovacuum(context.WithoutCancel(ctx), true) //nolint:errcheck // best effort: the table is the bench's own
	}
	rep := BenchReport{Orders: *orders, BatchSize: cfg.BatchSize, Writers: cfg.Writers, Autovacuum: *autovacuum}

	b := &bench{cfg: cfg, env: env, out: out, st: st, exe: exe,
		childEnv: append(os.Environ(), "KAFKA_BROKERS="+broker.Addr(), "DATABASE_URL="+db.URL, "DB_MIGRATE=false",
			"LOG_LEVEL=info", "STATS_INTERVAL=1h", "METRICS_ADDR=", "CONSUMER_BATCH_SIZE="+strconv.Itoa(cfg.BatchSize),
			"CONSUMER_WRITERS="+strconv.Itoa(cfg.Writers), "DB_MAX_CONNS="+strconv.Itoa(int(cfg.DBMaxConns)))}
	rep.Machine = BenchMachine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Database: string(db.Source)}
	if rep.Machine.PostgreSQL, err = st.ServerVersion(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "bench: %d orders, batch size %d, %d writers, %d CPUs, PostgreSQL %s (%s)\n",
		*orders, cfg.BatchSize, cfg.Writers, rep.Machine.CPUs, rep.Machine.PostgreSQL, db.Source)

	// Preload the topic, as fast as the producer goes, keeping the rows
	// for the COPY baseline.
	rows, took, err := b.preload(ctx, "bench-3p", 3, *orders, true)
	if err != nil {
		return err
	}
	rep.Producer.MaxRate = float64(*orders) / took.Seconds()
	fmt.Fprintf(out, "producer  %d orders preloaded at %.0f/s\n", *orders, rep.Producer.MaxRate)

	// The baseline is the faster of two COPYs: the target is held against
	// PostgreSQL at its best.
	var copyTook time.Duration
	for range 2 {
		if err := st.Bench().Reset(ctx); err != nil {
			return err
		}
		took, err := st.Bench().CopyBaseline(ctx, rows)
		if err != nil {
			return err
		}
		if copyTook == 0 || took < copyTook {
			copyTook = took
		}
	}
	rep.Copy = rate(int64(*orders), copyTook)
	fmt.Fprintf(out, "copy      %d rows in %.2fs: %.0f rows/s\n", *orders, copyTook.Seconds(), rep.Copy.RowsPerSec)

	// The first drain is the headline: one consumer, three partitions.
	// Scaling adds 2 and 3 consumers, then the same on six partitions.
	consumers := []int{1}
	if *scaling {
		consumers = []int{1, 2, 3}
	}
	for _, partitions := range []int32{3, 6} {
		topic := fmt.Sprintf("bench-%dp", partitions)
		if partitions == 6 {
			if !*scaling {
				break
			}
			if _, _, err := b.preload(ctx, topic, partitions, *orders, false); err != nil {
				return err
			}
		}
		for _, c := range consumers {
			r, err := b.drain(ctx, topic, int(partitions), c, int64(*orders), rep.Copy.RowsPerSec)
			if err != nil {
				return err
			}
			rep.Scaling = append(rep.Scaling, r)
		}
	}
	// Like the baseline, the headline drain is the faster of two.
	again, err := b.drain(ctx, "bench-3p", 3, 1, int64(*orders), rep.Copy.RowsPerSec)
	if err != nil {
		return err
	}
	if again.RowsPerSec > rep.Scaling[0].RowsPerSec {
		rep.Scaling[0] = again
	}
	rep.Drain = rep.Scaling[0]

	for _, r := range rates {
		lat, pr, err := b.atRate(ctx, r, *rateFor)
		if err != nil {
			return err
		}
		rep.Latency = append(rep.Latency, lat)
		rep.Producer.Fixed = append(rep.Producer.Fixed, pr)
	}
	rep.Targets = judgeBench(rep)

	if *asJSON {
		if err := json.NewEncoder(env.Stdout).Encode(rep); err != nil {
			return err
		}
	} else {
		printBench(env.Stdout, rep)
	}
	if *check {
		for _, t := range rep.Targets {
			if !t.Met {
				return fmt.Errorf("%w: %s: want %s, got %s", ErrBenchTargetMissed, t.Name, t.Want, t.Got)
			}
		}
	}
	return nil
}

type bench struct {
	cfg      config.Config
	env      *Env
	out      io.Writer
	st       *store.Store
	exe      string
	childEnv []string
	drains   int
}

// preload produces n orders to a new topic as fast as the producer goes and
// returns how long it took and, when keep is set, the orders as rows.
func (b *bench) preload(ctx context.Context, topic string, partitions int32, n int, keep bool) ([]store.Row, time.Duration, error) {
	cfg := b.cfg
	cfg.Topic, cfg.Partitions = topic, partitions
	cl, err := newProducerClient(ctx, cfg, b.env.Log, nil)
	if err != nil {
		return nil, 0, err
	}
	defer cl.Close()
	var mu sync.Mutex
	var rows []store.Row
	if keep {
		rows = make([]store.Row, 0, n)
	}
	p := producer.New(cl, order.NewGenerator(uint64(max(partitions, 0)), nil), producer.Config{Topic: topic, Count: n}, b.env.Log)
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
	// Each drain is a new group, so it starts at the beginning of the topic.
	b.drains++
	group := fmt.Sprintf("bench-%s-%d-%d", topic, consumers, b.drains)
	g, err := b.startConsumers(ctx, topic, group, consumers)
	if err != nil {
		return BenchDrain{}, err
	}
	defer g.stop()
	start, err := b.firstAssigned(ctx, g, group)
	if err != nil {
		return BenchDrain{}, err
	}
	if err := b.waitCovered(ctx, g, group, n, time.Minute+time.Duration(n)*100*time.Microsecond); err != nil {
		return BenchDrain{}, err
	}
	took := time.Since(start)
	cpu, rss := g.stop()
	stored, err := b.st.Count(ctx)
	if err != nil {
		return BenchDrain{}, err
	}
	if stored != n {
		return BenchDrain{}, fmt.Errorf("drain of %s with %d consumers stored %d orders of %d", topic, consumers, stored, n)
	}
	d := BenchDrain{Partitions: partitions, Consumers: consumers, BenchRate: rate(n, took),
		CPUMicrosPerOrder: float64(cpu.Microseconds()) / float64(n), PeakRSSMiB: rss}
	d.RatioToCopy = d.RowsPerSec / copyRate
	fmt.Fprintf(b.out, "drain     %d partitions, %d consumer(s): %.0f rows/s (%.2f of COPY), %.1f CPU µs/order, peak RSS %.1f MiB\n",
		partitions, consumers, d.RowsPerSec, d.RatioToCopy, d.CPUMicrosPerOrder, d.PeakRSSMiB)
	return d, nil
}

// atRate runs one consumer while the producer sends at a fixed rate, then
// reads the end-to-end latency from the table.
func (b *bench) atRate(ctx context.Context, r float64, d time.Duration) (BenchLatency, BenchProducerRate, error) {
	if err := b.st.Bench().Reset(ctx); err != nil {
		return BenchLatency{}, BenchProducerRate{}, err
	}
	topic := "bench-rate-" + strconv.FormatFloat(r, 'f', -1, 64)
	cfg := b.cfg
	cfg.Topic, cfg.Partitions = topic, 3
	cl, err := newProducerClient(ctx, cfg, b.env.Log, nil)
	if err != nil {
		return BenchLatency{}, BenchProducerRate{}, err
	}
	defer cl.Close()
	group := "bench-" + topic
	g, err := b.startConsumers(ctx, topic, group, 1)
	if err != nil {
		return BenchLatency{}, BenchProducerRate{}, err
	}
	defer g.stop()
	if _, err := b.firstAssigned(ctx, g, group); err != nil {
		return BenchLatency{}, BenchProducerRate{}, err
	}
	since := time.Now()
	p := producer.New(cl, order.NewGenerator(uint64(r), nil), producer.Config{Topic: topic, Rate: r, Duration: d}, b.env.Log)
	if err := p.Run(ctx); err != nil {
		return BenchLatency{}, BenchProducerRate{}, fmt.Errorf("produce at %v/s: %w", r, err)
	}
	acked := p.Stats().Acked
	if err := b.waitCovered(ctx, g, group, acked, time.Minute); err != nil {
		return BenchLatency{}, BenchProducerRate{}, err
	}
	_, rss := g.stop()
	lat, err := b.st.Latency(ctx, since)
	if err != nil {
		return BenchLatency{}, BenchProducerRate{}, err
	}
	l := BenchLatency{Rate: r, Orders: lat.N, P50ms: ms(lat.P50), P99ms: ms(lat.P99), MaxMs: ms(lat.Max), PeakRSSMiB: rss}
	achieved := float64(acked) / d.Seconds()
	pr := BenchProducerRate{Target: r, Achieved: achieved, ErrorPct: (achieved - r) / r * 100}
	fmt.Fprintf(b.out, "rate      %v/s for %v: produced %.1f/s (%+.2f%%), latency p50 %.1f ms p99 %.1f ms max %.1f ms, consumer peak RSS %.1f MiB\n",
		r, d, achieved, pr.ErrorPct, l.P50ms, l.P99ms, l.MaxMs, rss)
	return l, pr, nil
}

// waitCovered waits until the group's stored offsets cover n messages. The
// offsets table is read rather than the orders, so that waiting costs
// PostgreSQL next to nothing.
func (b *bench) waitCovered(ctx context.Context, g *consumerGroup, group string, n int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		covered, err := b.st.Covered(ctx, group)
		if err != nil {
			return err
		}
		if covered >= n {
			return nil
		}
		if err := g.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consumers covered %d of %d messages in %v:\n%s", covered, n, limit, g.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// consumerGroup is `foodpipe consume` children of one group.
type consumerGroup struct {
	kids    []*child
	logs    []*childLog
	stopped bool
	cpu     time.Duration
	peakRSS float64
}

func (b *bench) startConsumers(ctx context.Context, topic, group string, n int) (*consumerGroup, error) {
	g := &consumerGroup{}
	env := append(b.childEnv, "KAFKA_TOPIC="+topic, "KAFKA_GROUP="+group)
	for i := 1; i <= n; i++ {
		l := &childLog{}
		kid, err := startChild(ctx, b.exe, env, l, "consume", "--id", fmt.Sprintf("%s-%d", group, i))
		if err != nil {
			g.stop()
			return nil, err
		}
		g.kids, g.logs = append(g.kids, kid), append(g.logs, l)
	}
	return g, nil
}

// firstAssigned waits for the first member of group to be given
// partitions, as the group's coordinator tells, and returns when it saw
// that (to within 10 ms).
func (b *bench) firstAssigned(ctx context.Context, g *consumerGroup, group string) (time.Time, error) {
	adm, closeAdm, err := adminClient(ctx, b.cfg, b.env.Log)
	if err != nil {
		return time.Time{}, err
	}
	defer closeAdm()
	deadline := time.Now().Add(time.Minute)
	for {
		described, err := adm.DescribeGroups(ctx, group)
		if err == nil {
			for _, m := range described[group].Members {
				if a, ok := m.Assigned.AsConsumer(); ok && len(a.Topics) > 0 && len(a.Topics[0].Partitions) > 0 {
					return time.Now(), nil
				}
			}
		}
		if err := g.exited(); err != nil {
			return time.Time{}, err
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no consumer was assigned partitions within a minute:\n%s", g.logTail())
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// exited reports a consumer that stopped by itself.
func (g *consumerGroup) exited() error {
	for _, k := range g.kids {
		select {
		case <-k.done:
			return fmt.Errorf("a consumer exited: %w\n%s", k.err, g.logTail())
		default:
		}
	}
	return nil
}

// stop stops the consumers and returns their CPU time, summed, and the
// largest peak RSS.
func (g *consumerGroup) stop() (time.Duration, float64) {
	if g.stopped {
		return g.cpu, g.peakRSS
	}
	g.stopped = true
	for _, k := range g.kids {
		// The peak resident set is read while the process runs: the
		// kernel's maxrss of a child started by fork and exec also counts
		// the parent's pages from before the exec.
		g.peakRSS = max(g.peakRSS, procStatusMiB(k.cmd.Process.Pid, "VmHWM"))
		k.stop()
		if ps := k.cmd.ProcessState; ps != nil {
			g.cpu += ps.UserTime() + ps.SystemTime()
		}
	}
	return g.cpu, g.peakRSS
}

func (g *consumerGroup) logTail() string {
	var s strings.Builder
	for _, l := range g.logs {
		s.WriteString(tailString(l.String(), 1500))
	}
	return s.String()
}

// childLog keeps the last MiB or so of a consumer's log, for a failure's report.
type childLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *childLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 1<<20 {
		l.buf.Reset()
	}
	return l.buf.Write(p)
}

func (l *childLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func rate(n int64, d time.Duration) BenchRate {
	return BenchRate{Rows: n, Seconds: d.Seconds(), RowsPerSec: float64(n) / d.Seconds()}
}

func parseRates(s string) ([]float64, error) {
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

// judgeBench holds the report against the performance targets.
func judgeBench(r BenchReport) []BenchTarget {
	ts := []BenchTarget{{
		Name: "drain, 1 consumer, vs raw COPY", Want: "≥ 0.80",
		Got: fmt.Sprintf("%.2f", r.Drain.RatioToCopy), Met: r.Drain.RatioToCopy >= 0.8,
	}, {
		Name: "consumer peak RSS during the drain", Want: "≤ 256 MiB",
		Got: fmt.Sprintf("%.1f MiB", r.Drain.PeakRSSMiB), Met: r.Drain.PeakRSSMiB <= 256,
	}}
	for _, l := range r.Latency {
		switch l.Rate {
		case 10:
			ts = append(ts, BenchTarget{Name: "consumer peak RSS at 10 orders/s", Want: "≤ 64 MiB",
				Got: fmt.Sprintf("%.1f MiB", l.PeakRSSMiB), Met: l.PeakRSSMiB <= 64})
		case 1000:
			ts = append(ts, BenchTarget{Name: "end-to-end p99 at 1,000 orders/s", Want: "≤ 25 ms",
				Got: fmt.Sprintf("%.1f ms", l.P99ms), Met: l.P99ms <= 25})
		}
	}
	return ts
}

func printBench(w io.Writer, r BenchReport) {
	av := "off"
	if r.Autovacuum {
		av = "on"
	}
	fmt.Fprintf(w, "\nfoodpipe bench: %d orders, batch size %d, %d writers per consumer, autovacuum %s; %d CPUs, %s, PostgreSQL %s\n\n",
		r.Orders, r.BatchSize, r.Writers, av, r.Machine.CPUs, r.Machine.Go, r.Machine.PostgreSQL)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "drain\tpartitions\tconsumers\trows/s\tvs COPY\tCPU µs/order\tpeak RSS MiB\t")
	fmt.Fprintf(tw, "raw COPY\t\t\t%.0f\t1.00\t\t\t\n", r.Copy.RowsPerSec)
	for _, d := range r.Scaling {
		fmt.Fprintf(tw, "consumer\t%d\t%d\t%.0f\t%.2f\t%.1f\t%.1f\t\n", d.Partitions, d.Consumers, d.RowsPerSec, d.RatioToCopy, d.CPUMicrosPerOrder, d.PeakRSSMiB)
	}
	_ = tw.Flush() // a report that cannot be written has nowhere to say so
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "orders/s\tproduced/s\terror %\tp50 ms\tp99 ms\tmax ms\tconsumer peak RSS MiB\t")
	for i, l := range r.Latency {
		p := r.Producer.Fixed[i]
		fmt.Fprintf(tw, "%.0f\t%.1f\t%+.2f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", l.Rate, p.Achieved, p.ErrorPct, l.P50ms, l.P99ms, l.MaxMs, l.PeakRSSMiB)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nproducer, as fast as it goes: %.0f orders/s generated and acknowledged\n\n", r.Producer.MaxRate)
	for _, t := range r.Targets {
		mark := "met"
		if !t.Met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "%-6s  %s: %s (want %s)\n", mark, t.Name, t.Got, t.Want)
	}
}
