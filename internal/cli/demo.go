package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/consumer"
	"foodpipe/internal/harness"
	"foodpipe/internal/order"
	"foodpipe/internal/producer"
	"foodpipe/internal/secret"
	"foodpipe/internal/telemetry"
)

// Summary is what the demo reports at the end (and prints with --json).
type Summary struct {
	Produced   int64            `json:"produced"`
	Stored     int64            `json:"stored"`
	Missing    int64            `json:"missing"`
	Duplicates int64            `json:"duplicates"`
	Invalid    int64            `json:"invalid"`
	Partitions map[string]int64 `json:"partitions"`
	Consumers  map[string]int64 `json:"consumers"`
	LatencyMS  struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"latency_ms"`
	// Analytics is the second group's result, with --analytics.
	Analytics *AnalyticsSummary `json:"analytics,omitempty"`
	Database  string            `json:"database"`
	Broker    string            `json:"broker"`
	Seconds   float64           `json:"seconds"`
}

// AnalyticsSummary is what the analytics group made of the same orders.
type AnalyticsSummary struct {
	Group string `json:"group"`
	// Counted is how many of this run's orders it counted.
	Counted int64 `json:"counted"`
	// Checked is how many orders the group has counted in all (a run before
	// in the same database may have counted some): its aggregates were held
	// against theirs in the orders table.
	Checked int64 `json:"checked"`
	// Differences are where its aggregates differ from the sums of the
	// orders it counted, as the table holds them (none: every order counted
	// exactly once).
	Differences []string `json:"differences"`
}

// demoDatabase is the database the demo uses, and empties, on the local
// PostgreSQL server (or a temporary one) when DATABASE_URL is not set.
var demoDatabase = "foodpipe_demo"

// ErrDemoIncomplete means not every produced order ended up in the table exactly once.
var ErrDemoIncomplete = errors.New("not every produced order was stored")

func runDemo(ctx context.Context, env *Env, args []string) error {
	f, err := newFlags(env, "demo")
	if err != nil {
		return err
	}
	orders := f.Int("orders", 100, "how many orders to produce")
	f.bind("rate", "PRODUCER_RATE")
	consumers := f.Int("consumers", 2, "consumers in the group (more than the partitions leaves some idle)")
	asJSON := f.Bool("json", false, "print the summary as one JSON object on stdout")
	wait := f.Duration("wait", 30*time.Second, "how long to wait for the last orders to be stored after producing")
	analytics := f.Bool("analytics", false, "also run an analytics member, a second group reading the same topic, and check its aggregates")
	stopOneAfter := f.Int("stop-one-after", 0, "stop one consumer once this many orders are produced, to watch its partitions move (0: never)")
	f.bind("partitions", "KAFKA_PARTITIONS")
	userDB, err := f.ownPipelineFlags()
	if err != nil {
		return err
	}
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	if *orders < 1 || *consumers < 1 || *consumers > 64 {
		return fmt.Errorf("%w: --orders must be at least 1 and --consumers from 1 to 64", ErrUsage)
	}
	if *stopOneAfter < 0 || *stopOneAfter > 0 && *consumers < 2 {
		return fmt.Errorf("%w: --stop-one-after needs at least 2 consumers and must not be negative", ErrUsage)
	}
	out := env.Stdout
	if *asJSON {
		out = env.Stderr
	}
	log := env.Log
	start := time.Now()
	tty := env.terminal(out)

	// On a terminal the live view is redrawn in place: the Kafka clients'
	// own lines stay off it (Env.clientLog).
	pl, err := harness.Start(ctx, harness.Options{Config: cfg, UserDatabase: userDB(), DBName: demoDatabase, Log: log, ClientLog: env.clientLog(tty)})
	if err != nil {
		return err
	}
	defer pl.Close()
	cfg, db, st := pl.Config, pl.DB, pl.Store
	if !userDB() {
		// The demo's own database starts empty, as the lab's does, so that
		// the summary and the analytics check are this run's alone; a
		// database the user named is only added to.
		if err := st.Bench().Reset(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "broker    %s (embedded, topic %s with %s)\n", pl.BrokerAddr(), cfg.Topic, count(cfg.Partitions, "partition"))
	fmt.Fprintf(out, "database  %s (%s)\n", secret.RedactURL(db.URL), db.Source)

	// Consumers first, so the group has settled before orders flow and the
	// partitions are visibly shared. Each has its own context, so that one
	// can leave the group while the others go on.
	cctx, stopConsumers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsumers()
	m := telemetry.NewMetrics()
	// The live view watches the members' events from the start, so that
	// the members joining the group, and the rebalances they cause, are
	// shown as they happen.
	var mu sync.Mutex
	ids := make([]string, 0, *orders)
	parts := map[int32]int64{}
	names := make([]string, *consumers)
	for i := range names {
		names[i] = fmt.Sprintf("consumer-%d", i+1)
	}
	view := newLiveView(out, tty, *orders, cfg.Partitions, func() map[int32]int64 {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(parts)
	}, names)
	var members []*consumer.Consumer
	var stops []context.CancelFunc
	var wg sync.WaitGroup
	errs := make(chan error, *consumers+1)
	for _, name := range names {
		c, err := pl.Consumer(ctx, name, m, view.observe)
		if err != nil {
			return err
		}
		mctx, stop := context.WithCancel(cctx)
		members = append(members, c)
		stops = append(stops, stop)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(mctx); err != nil {
				errs <- fmt.Errorf("%s: %w", c.ID(), err)
			}
		}()
	}
	var an *consumer.Consumer
	if *analytics {
		// Its rebalances are its group's own: the view tells them apart
		// from the orders group's, whose owners and counts it draws.
		own := func(e consumer.Event) {
			if a, ok := e.(consumer.Assigned); ok {
				view.event(a.At, fmt.Sprintf("group %s: %s now owns %v (the orders group is not affected)", cfg.AnalyticsGroup, a.Member, orNone(a.Owned)))
			}
		}
		if an, err = pl.AnalyticsConsumer(ctx, "analytics-1", m, own); err != nil {
			return err
		}
		wg.Go(func() {
			if err := an.Run(cctx); err != nil {
				errs <- fmt.Errorf("%s: %w", an.ID(), err)
			}
		})
	}
	every := time.Second
	if view.tty {
		every = 250 * time.Millisecond
	}
	progress := view.run(every)
	defer progress()
	waitForAssignments(ctx, members, int(cfg.Partitions), 15*time.Second)

	pcl, err := pl.ProducerClient(ctx, cfg, m)
	if err != nil {
		return err
	}
	defer pcl.Close()
	p := producer.New(pcl, order.NewGenerator(uint64(start.UnixNano()), nil), producer.Config{
		Topic: cfg.Topic, Rate: cfg.ProducerRate, Count: *orders, Metrics: m,
	}, log)
	p.OnAck = func(o order.Order, r *kgo.Record) {
		mu.Lock()
		ids = append(ids, o.OrderID)
		parts[r.Partition]++
		n := len(ids)
		mu.Unlock()
		if n == *stopOneAfter {
			// The last member leaves the group; the coordinator hands its
			// partitions to the others, which resume from its committed
			// offsets. Nothing is lost or stored twice.
			last := len(members) - 1
			view.stop(members[last].ID(), fmt.Sprintf("--stop-one-after %d", *stopOneAfter))
			go stops[last]()
		}
	}
	perr := p.Run(ctx)
	if perr != nil {
		progress()
		return fmt.Errorf("produce: %w", perr)
	}

	// Wait until every acknowledged order is in the table.
	deadline := time.Now().Add(*wait)
	var missing []string
	for {
		if missing, err = st.MissingOrders(ctx, ids); err != nil {
			progress()
			return err
		}
		if len(missing) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case err := <-errs:
			progress()
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
	var as *AnalyticsSummary
	if an != nil && len(missing) == 0 {
		// The analytics group reads at its own pace: wait until it has
		// counted every order, then hold its sums against the table.
		as = &AnalyticsSummary{Group: cfg.AnalyticsGroup}
		for as.Counted < int64(len(ids)) && time.Now().Before(deadline) && ctx.Err() == nil {
			left, err := st.Analytics().Uncounted(ctx, cfg.AnalyticsGroup, ids)
			if err != nil {
				progress()
				return err
			}
			as.Counted = int64(len(ids)) - left
			time.Sleep(100 * time.Millisecond)
		}
		c, err := st.Analytics().Check(ctx, cfg.AnalyticsGroup)
		if err != nil {
			progress()
			return err
		}
		as.Checked, as.Differences = c.Checked, c.Differences
	}
	progress()
	stopConsumers()
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}

	s := Summary{Produced: p.Stats().Acked, Stored: int64(len(ids) - len(missing)), Missing: int64(len(missing)),
		Partitions: map[string]int64{}, Consumers: map[string]int64{},
		Analytics: as, Database: string(db.Source), Broker: pl.BrokerAddr()}
	for part, n := range parts {
		s.Partitions[fmt.Sprint(part)] = n
	}
	for _, c := range members {
		cs := c.Stats()
		s.Consumers[c.ID()] = cs.Processed
		s.Duplicates += cs.Duplicates
		s.Invalid += cs.Invalid
	}
	lat, err := st.Latency(ctx, start)
	if err != nil {
		return err
	}
	s.LatencyMS.P50, s.LatencyMS.P99, s.LatencyMS.Max = ms(lat.P50), ms(lat.P99), ms(lat.Max)
	s.Seconds = time.Since(start).Seconds()
	if err := report(env, *asJSON, s, printSummary); err != nil {
		return err
	}
	if s.Missing > 0 || s.Stored != s.Produced || int(s.Produced) != *orders {
		return fmt.Errorf("%w: produced %d, stored %d, missing %d", ErrDemoIncomplete, s.Produced, s.Stored, s.Missing)
	}
	if as != nil && (as.Counted != s.Stored || len(as.Differences) > 0) {
		return fmt.Errorf("%w: analytics counted %d of %d orders, %d aggregates differ", ErrAnalyticsDiffer, as.Counted, s.Stored, len(as.Differences))
	}
	return nil
}

// waitForAssignments waits until every partition has an owner and, when there
// are enough partitions, every member owns one.
func waitForAssignments(ctx context.Context, members []*consumer.Consumer, partitions int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		owned, busy := 0, 0
		for _, c := range members {
			n := len(c.Assigned())
			owned += n
			if n > 0 {
				busy++
			}
		}
		if owned == partitions && busy == min(len(members), partitions) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func printSummary(w io.Writer, s Summary) {
	fmt.Fprintf(w, "\nsummary after %.1fs\n", s.Seconds)
	fmt.Fprintf(w, "  produced    %d\n  stored      %d\n  duplicates  %d\n  invalid     %d\n", s.Produced, s.Stored, s.Duplicates, s.Invalid)
	fmt.Fprintf(w, "  per partition:")
	for _, k := range slices.Sorted(maps.Keys(s.Partitions)) {
		fmt.Fprintf(w, "  %s=%d", k, s.Partitions[k])
	}
	fmt.Fprintf(w, "\n  per consumer: ")
	for _, k := range slices.Sorted(maps.Keys(s.Consumers)) {
		fmt.Fprintf(w, "  %s=%d", k, s.Consumers[k])
	}
	fmt.Fprintf(w, "\n  end-to-end latency  p50 %.1f ms  p99 %.1f ms  max %.1f ms\n", s.LatencyMS.P50, s.LatencyMS.P99, s.LatencyMS.Max)
	if s.Missing == 0 && s.Stored == s.Produced {
		fmt.Fprintln(w, "  every produced order is in PostgreSQL exactly once")
	}
	if a := s.Analytics; a != nil {
		fmt.Fprintf(w, "  analytics   %s counted by group %s", count(a.Counted, "order"), safe(a.Group))
		if len(a.Differences) == 0 && a.Counted == s.Stored {
			if a.Checked == a.Counted {
				fmt.Fprint(w, "; its aggregates equal the orders table's, to the cent")
			} else {
				fmt.Fprintf(w, "; its aggregates equal the orders table's for the %s it has counted in all, to the cent", count(a.Checked, "order"))
			}
		}
		fmt.Fprintln(w)
		for _, d := range a.Differences {
			fmt.Fprintln(w, "    differs: "+safe(d))
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
