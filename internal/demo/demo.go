// Package demo runs `foodpipe demo`: the whole pipeline in one process (an
// embedded broker, a producer, a group of consumers and, if asked, an
// analytics member of a second group), one consumer stopped halfway if
// asked, until every order produced is in PostgreSQL. It tells what happens
// as typed events, gathers a Summary and judges it (Judge). View draws the
// events on a terminal as the demo runs; the command line creates it and
// prints the summary, as it does measure's reports.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/consumer"
	"foodpipe/internal/harness"
	"foodpipe/internal/localpg"
	"foodpipe/internal/mail"
	"foodpipe/internal/order"
	"foodpipe/internal/producer"
	"foodpipe/internal/secret"
	"foodpipe/internal/wire"
)

var (
	// ErrIncomplete means not every produced order ended up in the table
	// exactly once.
	ErrIncomplete = errors.New("not every produced order was stored")
	// ErrAnalyticsDiffer means the analytics group's aggregates are not the
	// orders table's sums.
	ErrAnalyticsDiffer = errors.New("the aggregates differ from the orders table")
)

// Options say what a demo runs.
type Options struct {
	// Config is the configuration; the broker is an embedded one whatever
	// it names.
	Config config.Config
	// UserDatabase says the database is the user's (DATABASE_URL): it is
	// only added to. Otherwise the demo uses DBName, found as
	// localpg finds it, and empties it first.
	UserDatabase bool
	DBName       string
	// Orders are produced at Config.ProducerRate.
	Orders int
	// Consumers are the members of the orders group, from 1 to 64.
	Consumers int
	// Wait is how long to wait for the last orders to be stored after
	// producing.
	Wait time.Duration
	// Analytics also runs an analytics member, a second group reading the
	// same topic, and checks its aggregates against the orders table.
	Analytics bool
	// Notify also runs a notifier, a third group reading the same topic,
	// which emails each order's customer, and counts what the mail server
	// received. SMTPURL and MailAPIURL name the user's mail server (SMTP_URL
	// set); empty, the demo starts a Mailpit of its own in TempDir.
	Notify              bool
	SMTPURL, MailAPIURL string
	TempDir             string
	// StopOneAfter stops the last consumer once this many orders are
	// produced, so that its partitions move to the others (0: never).
	StopOneAfter int
	// Log is the pipeline's log; ClientLog the Kafka clients' (see
	// harness.Options).
	Log, ClientLog *slog.Logger
	// Observe is told each Event as it happens, from the demo's own
	// goroutine and from the members' and the producer's: it must be safe
	// for concurrent use, and quick. Nil tells nobody.
	Observe func(Event)
}

// Event is something the demo tells as it happens. The members' own events
// come as Member; watchers keep what they need.
type Event interface{ event() }

// Started says the broker and the database are ready; the members join
// next. Every other event comes after it.
type Started struct {
	Broker     string
	Topic      string
	Partitions int32
	// Database is the database's URL with its password masked, Source how
	// it was found.
	Database string
	Source   localpg.Source
	// Members are the orders group's consumers, in the order they start.
	Members []string
}

// Member is an event of a member: one of the orders group's consumers, or
// the analytics member (Analytics) of its own group.
type Member struct {
	Group     string
	Analytics bool
	// Notify marks the notifier's events (Options.Notify).
	Notify bool
	Event  consumer.Event
}

// Acked says the broker acknowledged an order.
type Acked struct {
	OrderID   string
	Partition int32
}

// Stopping says a member is asked to leave the group, After orders into the
// run (Options.StopOneAfter): the coordinator hands its partitions to the
// others, which resume from its committed offsets.
type Stopping struct {
	Member string
	After  int
}

// Counted says the wait is over: Stored of the orders produced are in the
// table, Missing are not (and the analytics group has counted what it
// will). The members stop next.
type Counted struct {
	Stored, Missing int64
}

func (Started) event()  {}
func (Member) event()   {}
func (Acked) event()    {}
func (Stopping) event() {}
func (Counted) event()  {}

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
	// Analytics is the second group's result, with Options.Analytics.
	Analytics *AnalyticsSummary `json:"analytics,omitempty"`
	// Notify is the notifier group's result, with Options.Notify.
	Notify   *NotifySummary `json:"notify,omitempty"`
	Database string         `json:"database"`
	Broker   string         `json:"broker"`
	Seconds  float64        `json:"seconds"`
}

// NotifySummary is what the notifier group did with the same orders, and
// what the mail server received.
type NotifySummary struct {
	Group string `json:"group"`
	// Sent and Refused are the orders the group recorded as emailed, and
	// as refused by the server (dead letters); InDoubt the sends again
	// after a notifier ended between sending and recording.
	Sent    int64 `json:"sent"`
	Refused int64 `json:"refused"`
	InDoubt int64 `json:"in_doubt"`
	// Received, Distinct and Duplicates are the server's, read from its API
	// (-1 when it did not answer).
	Received   int    `json:"received"`
	Distinct   int    `json:"distinct"`
	Duplicates int    `json:"duplicates"`
	Server     string `json:"server"`
	// Started says the demo started the mail server: it holds this run's
	// emails only, so its duplicates are this run's.
	Started bool `json:"started_server"`
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

// Judge says whether a demo of orders orders passed: every order produced
// is in the table exactly once and, with the analytics group, it counted
// each of them and its aggregates equal the table's. The error wraps
// ErrIncomplete or ErrAnalyticsDiffer.
func Judge(s Summary, orders int) error {
	if s.Missing > 0 || s.Stored != s.Produced || int(s.Produced) != orders {
		return fmt.Errorf("%w: produced %d, stored %d, missing %d", ErrIncomplete, s.Produced, s.Stored, s.Missing)
	}
	if n := s.Notify; n != nil && (n.Sent+n.Refused != s.Stored || n.Started && n.Duplicates > int(n.InDoubt)) {
		return fmt.Errorf("%w: the notifier settled %d of %d orders, %d duplicates for %d sends in doubt",
			ErrIncomplete, n.Sent+n.Refused, s.Stored, n.Duplicates, n.InDoubt)
	}
	if a := s.Analytics; a != nil && (a.Counted != s.Stored || len(a.Differences) > 0) {
		return fmt.Errorf("%w: analytics counted %d of %d orders, %d aggregates differ", ErrAnalyticsDiffer, a.Counted, s.Stored, len(a.Differences))
	}
	return nil
}

// Run runs the demo and sums it up. An error means the demo could not run
// to its end; whether what it found is right is Judge's to say.
func Run(ctx context.Context, o Options) (Summary, error) {
	if o.Orders < 1 || o.Consumers < 1 || o.Consumers > 64 || o.StopOneAfter < 0 || o.StopOneAfter > 0 && o.Consumers < 2 {
		return Summary{}, fmt.Errorf("demo of %d orders with %d consumers, one stopped after %d: out of range", o.Orders, o.Consumers, o.StopOneAfter)
	}
	tell := o.Observe
	if tell == nil {
		tell = func(Event) {}
	}
	start := time.Now()
	// The demo's own database starts empty (Fresh), as the lab's does, so
	// that the summary and the analytics check are this run's alone; a
	// database the user named is only added to.
	pl, err := harness.Start(ctx, harness.Options{Config: o.Config, UserDatabase: o.UserDatabase, DBName: o.DBName, Fresh: true, Log: o.Log, ClientLog: o.ClientLog})
	if err != nil {
		return Summary{}, err
	}
	defer pl.Close()
	cfg, db, st := pl.Config, pl.DB, pl.Store
	names := make([]string, o.Consumers)
	for i := range names {
		names[i] = fmt.Sprintf("consumer-%d", i+1)
	}
	// Watchers hear of the members from the start, so that the members
	// joining the group, and the rebalances they cause, are told as they
	// happen.
	tell(Started{Broker: pl.BrokerAddr(), Topic: cfg.Topic, Partitions: cfg.Partitions,
		Database: secret.RedactURL(db.URL), Source: db.Source, Members: names})

	// Consumers first, so the group has settled before orders flow and the
	// partitions are visibly shared. Each has its own context, so that one
	// can leave the group while the others go on.
	cctx, stopConsumers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsumers()
	m := wire.NewMetrics("")
	var members []*consumer.Consumer
	var stops []context.CancelFunc
	var wg sync.WaitGroup
	errs := make(chan error, o.Consumers+1)
	orders := func(e consumer.Event) { tell(Member{Group: cfg.Group, Event: e}) }
	for _, name := range names {
		c, err := pl.Consumer(ctx, name, m, orders)
		if err != nil {
			return Summary{}, err
		}
		mctx, stop := context.WithCancel(cctx)
		members = append(members, c)
		stops = append(stops, stop)
		wg.Go(func() {
			if err := c.Run(mctx); err != nil {
				errs <- fmt.Errorf("%s: %w", c.ID(), err)
			}
		})
	}
	var an *consumer.Consumer
	if o.Analytics {
		analytics := func(e consumer.Event) { tell(Member{Group: cfg.AnalyticsGroup, Analytics: true, Event: e}) }
		if an, err = pl.AnalyticsConsumer(ctx, "analytics-1", m, analytics); err != nil {
			return Summary{}, err
		}
		wg.Go(func() {
			if err := an.Run(cctx); err != nil {
				errs <- fmt.Errorf("%s: %w", an.ID(), err)
			}
		})
	}
	var nt *consumer.Consumer
	smtpURL, apiURL := o.SMTPURL, o.MailAPIURL
	if o.Notify {
		if smtpURL == "" {
			ms, err := harness.StartMailServer(ctx, o.TempDir)
			if err != nil {
				return Summary{}, err
			}
			defer ms.Stop()
			smtpURL, apiURL = ms.SMTPURL, ms.APIURL
		}
		notified := func(e consumer.Event) { tell(Member{Group: cfg.NotifyGroup, Notify: true, Event: e}) }
		if nt, err = pl.NotifyConsumer(ctx, "notify-1", smtpURL, m, notified); err != nil {
			return Summary{}, err
		}
		wg.Go(func() {
			if err := nt.Run(cctx); err != nil {
				errs <- fmt.Errorf("%s: %w", nt.ID(), err)
			}
		})
	}
	waitForAssignments(ctx, members, int(cfg.Partitions), 15*time.Second)

	pcl, err := pl.ProducerClient(ctx, cfg, m)
	if err != nil {
		return Summary{}, err
	}
	defer pcl.Close()
	p := producer.New(pcl, order.NewGenerator(uint64(start.UnixNano()), nil), producer.Config{
		Topic: cfg.Topic, Rate: cfg.ProducerRate, Count: o.Orders, Linger: wire.Linger(cfg), Metrics: m,
	}, o.Log)
	var mu sync.Mutex
	ids := make([]string, 0, o.Orders)
	parts := map[int32]int64{}
	p.OnAck = func(ord order.Order, r *kgo.Record) {
		mu.Lock()
		ids = append(ids, ord.OrderID)
		parts[r.Partition]++
		n := len(ids)
		mu.Unlock()
		tell(Acked{OrderID: ord.OrderID, Partition: r.Partition})
		if n == o.StopOneAfter {
			// The last member leaves the group; the coordinator hands its
			// partitions to the others, which resume from its committed
			// offsets. Nothing is lost or stored twice.
			last := len(members) - 1
			tell(Stopping{Member: members[last].ID(), After: o.StopOneAfter})
			go stops[last]()
		}
	}
	if err := p.Run(ctx); err != nil {
		return Summary{}, fmt.Errorf("produce: %w", err)
	}

	// Wait until every acknowledged order is in the table.
	deadline := time.Now().Add(o.Wait)
	var missing []string
	for {
		if missing, err = st.MissingOrders(ctx, ids); err != nil {
			return Summary{}, err
		}
		if len(missing) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case err := <-errs:
			return Summary{}, err
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
				return Summary{}, err
			}
			as.Counted = int64(len(ids)) - left
			time.Sleep(100 * time.Millisecond)
		}
		c, err := st.Analytics().Check(ctx, cfg.AnalyticsGroup)
		if err != nil {
			return Summary{}, err
		}
		as.Checked, as.Differences = c.Checked, c.Differences
	}
	var ns *NotifySummary
	if nt != nil && len(missing) == 0 {
		// The notifier reads at its own pace: wait until it has settled
		// every order (emailed, or refused into a dead letter).
		ns = &NotifySummary{Group: cfg.NotifyGroup, Server: smtpURL, Received: -1, Started: o.SMTPURL == ""}
		for ns.Sent+ns.Refused < int64(len(ids)) && time.Now().Before(deadline.Add(o.Wait)) && ctx.Err() == nil {
			c, err := st.Notifications().CountNotices(ctx, cfg.NotifyGroup, ids)
			if err != nil {
				return Summary{}, err
			}
			ns.Sent, ns.Refused, ns.InDoubt = c.Sent, c.Refused, c.InDoubt
			time.Sleep(100 * time.Millisecond)
		}
		if in, err := mail.ReadInbox(ctx, apiURL); err == nil {
			ns.Received, ns.Distinct, ns.Duplicates = len(in.Messages), in.Distinct, in.Duplicates
		}
	}
	tell(Counted{Stored: int64(len(ids) - len(missing)), Missing: int64(len(missing))})
	stopConsumers()
	wg.Wait()
	close(errs)
	for err := range errs {
		return Summary{}, err
	}

	s := Summary{Produced: p.Stats().Acked, Stored: int64(len(ids) - len(missing)), Missing: int64(len(missing)),
		Partitions: map[string]int64{}, Consumers: map[string]int64{},
		Analytics: as, Notify: ns, Database: string(db.Source), Broker: pl.BrokerAddr()}
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
		return Summary{}, err
	}
	s.LatencyMS.P50, s.LatencyMS.P99, s.LatencyMS.Max = ms(lat.P50), ms(lat.P99), ms(lat.Max)
	s.Seconds = time.Since(start).Seconds()
	return s, nil
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

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
