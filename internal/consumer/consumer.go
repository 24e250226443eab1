// Package consumer reads orders from Kafka as a member of a consumer group,
// validates them, writes them to PostgreSQL in batches and only then commits
// the offsets.
//
// The order of those steps is the delivery guarantee. Kafka offsets are
// committed after the database transaction, so a crash between the two makes
// Kafka re-deliver orders that are already stored; they are recognised by
// order_id and counted as duplicates. And because each transaction also
// stores the next offset of every partition it covers (table
// consumer_offsets), a restarted consumer resumes from the database's
// position when it is ahead of Kafka's: the effect in the database is exactly
// once, whatever crashes. The transaction records the batch's dead letters
// too, which are published from there (dlq.go).
//
// The files: consumer.go has the member and its sessions in the group,
// settings.go what it is told to run on (Config), group.go the group's
// settings and callbacks, write.go a poll's way into PostgreSQL, topic.go the
// topic as it changes under the group, commit.go the Kafka commit, dlq.go
// the dead-letter publisher, events.go what it reports.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/dlq"
	"foodpipe/internal/store"
	"foodpipe/internal/telemetry"
)

// Store is what the consumer needs from the database.
type Store interface {
	// WriteBatch stores the rows and the partitions' next offsets in one
	// transaction. It must return an error wrapping store.ErrStaleOffsets,
	// writing nothing, when a partition's stored offset is already past the
	// batch (another consumer owns it now).
	WriteBatch(ctx context.Context, b store.Batch) (store.Result, error)
	// Offsets returns the next offset to read per partition, as stored.
	Offsets(ctx context.Context, group, topic string) (map[int32]int64, error)
	// GroupOffsets returns every next offset stored for the group, of every
	// incarnation of every topic (see store.Scope).
	GroupOffsets(ctx context.Context, group string) ([]store.StoredOffset, error)
	// Writable checks that the database answers and takes writes: a
	// read-only server (a standby, during a failover) answers reads, and
	// must not count as back.
	Writable(ctx context.Context) error
	// PublishDeadLetters hands up to limit of the group's recorded, unpublished
	// dead letters to publish and marks those it published (one error per
	// letter, nil when published).
	PublishDeadLetters(ctx context.Context, group string, limit int,
		publish func(context.Context, []store.DeadLetter) []error) (int, error)
}

const writeTimeout = 15 * time.Second

// RebalanceTimeout is how long a rebalance waits for a member to finish the
// batch in hand: one write attempt and some margin.
const RebalanceTimeout = writeTimeout + 5*time.Second

// AwayAfter is how long a batch may keep failing to be written before this
// member leaves the group until the database answers (see Run). With the
// leave and the others' rejoin it stays within RebalanceTimeout, the bound a
// rebalance puts on a member stuck on its batch.
const AwayAfter = writeTimeout

var (
	// ErrConfig is returned by New for a Config it cannot run on.
	ErrConfig = errors.New("consumer config")
	// errDatabaseAway ends a session: the database has not taken a batch for AwayAfter.
	errDatabaseAway = errors.New("database away")
)

// Stats are the consumer's counters.
type Stats struct {
	Processed  int64 // orders newly stored
	Duplicates int64 // orders already stored with the same content
	Invalid    int64 // messages set aside: sent to the dead-letter topic, or skipped by a store that records none (analytics)
	Failures   int64 // failed database writes (each retried)
	Batches    int64
	// LastBatch is how long the last database write took.
	LastBatch time.Duration
}

// Consumer is one member of the group.
type Consumer struct {
	base []kgo.Opt // connection options every client of this consumer starts from
	// pub publishes dead letters and reads topic metadata. It is not a
	// group member, so it outlives the group client of each session.
	pub *kgo.Client
	// group is the current session's group member (see Run), nil
	// between sessions.
	group    atomic.Pointer[kgo.Client]
	store    Store
	cfg      Config
	log      *slog.Logger
	breaker  *gobreaker.CircuitBreaker[store.Result]
	deadKick chan struct{} // wakes the dead-letter publisher
	away     atomic.Bool   // out of the group until the database answers
	failMu   sync.Mutex
	failing  map[*store.Batch]int // failed attempts of the batches in flight
	commits  commits              // stored, not yet committed to Kafka (commit.go)
	// schemaErr is set while the database refuses batches for their
	// schema or grants (see write); guarded by failMu.
	schemaErr error

	processed, duplicates, invalid, failures, batches atomic.Int64
	lastBatch                                         atomic.Int64

	mu    sync.Mutex
	owned map[int32]bool
	scope atomic.Pointer[topicScope] // this session's; see offsetScope

	// posMu guards what the member knows of its partitions' positions
	// (topic.go): the offset it expects to read next, and the stretches
	// Kafka deleted before the group read them, said once and recorded with
	// the partition's next batch.
	posMu          sync.Mutex
	next           map[int32]int64
	pendingExpired map[expiredKey]store.ExpiredRange
	saidExpired    map[expiredKey]bool
	saidFresh      atomic.Value // string: the scope whose fresh start was said
	topicGone      atomic.Bool  // the topic's absence was said
}

// ID is this member's name.
func (c *Consumer) ID() string { return c.cfg.ID }

// New builds a consumer; base are the client options from kafka.ClientOpts.
func New(base []kgo.Opt, st Store, cfg Config, log *slog.Logger) (*Consumer, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Metrics == nil {
		cfg.Metrics = telemetry.NewMetrics(telemetry.Options{InvalidReasons: dlq.Reasons()})
	}
	log = log.With(slog.String("consumer", cfg.ID))
	c := &Consumer{base: base, store: st, cfg: cfg, log: log, owned: map[int32]bool{},
		deadKick: make(chan struct{}, 1), next: map[int32]int64{},
		pendingExpired: map[expiredKey]store.ExpiredRange{}, saidExpired: map[expiredKey]bool{}}
	c.breaker = gobreaker.NewCircuitBreaker[store.Result](gobreaker.Settings{
		Name: "postgres",
		// Once the retries are used up the breaker opens: no new records
		// are taken, and one trial write is let through every Timeout.
		// The retries are those of one batch: writers failing side by
		// side in the same outage do not add up.
		ReadyToTrip: func(gobreaker.Counts) bool { return c.worstBatch() > cfg.DBRetries },
		Timeout:     5 * time.Second,
		IsSuccessful: func(err error) bool {
			return err == nil || !store.IsTransient(err)
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			lvl := slog.LevelWarn
			open := 1.0
			if to == gobreaker.StateClosed {
				lvl, open = slog.LevelInfo, 0
			}
			c.observe(BreakerChanged{Member: cfg.ID, At: time.Now(), From: from.String(), To: to.String()})
			cfg.Metrics.BreakerOpen.Set(open)
			if to == gobreaker.StateOpen && from == gobreaker.StateClosed {
				cfg.Metrics.BreakerOpens.Inc()
			}
			log.Log(context.Background(), lvl, "database circuit breaker "+to.String(), slog.String("from", from.String()))
		},
	})
	pub, err := kgo.NewClient(base...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	c.pub = pub
	return c, nil
}

// Stats returns the counters so far.
func (c *Consumer) Stats() Stats {
	return Stats{
		Processed: c.processed.Load(), Duplicates: c.duplicates.Load(), Invalid: c.invalid.Load(),
		Failures: c.failures.Load(), Batches: c.batches.Load(), LastBatch: time.Duration(c.lastBatch.Load()),
	}
}

// Run consumes until ctx is done, then finishes the batch in hand, commits,
// leaves the group and returns nil. It returns an error only for what
// retrying cannot fix (a schema the database does not have, a fatal Kafka
// error); offsets of unwritten records are never committed.
//
// Membership comes in sessions. When this member cannot write to the
// database for AwayAfter (cut off from it while the others may not be), it
// drops the batch in hand uncommitted, leaves the group so that the others
// take its partitions, waits until the database answers again, and joins
// anew. A member that cannot do its work never holds partitions for long.
func (c *Consumer) Run(ctx context.Context) (err error) {
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	relayDone := make(chan struct{})
	go func() { defer close(relayDone); c.relayDead(relayCtx) }()
	defer func() {
		// The publisher sends what is recorded and not yet published.
		stopRelay()
		<-relayDone
		c.pub.Close()
		c.log.Info("consumer stopped", slog.Any("stats", c.Stats()))
	}()
	stop := c.logStats(c.cfg.StatsInterval)
	defer stop()
	for {
		err := c.session(ctx)
		if errors.Is(err, errTopicRecreated) {
			continue
		}
		if !errors.Is(err, errDatabaseAway) {
			return err
		}
		c.log.Error("the database has not taken a batch for "+AwayAfter.String()+": left the group so that the others take the partitions; joining again once it answers",
			slog.Any("err", err))
		c.setAway(true)
		c.observe(Membership{Member: c.cfg.ID, At: time.Now(), InGroup: false, Why: err.Error()})
		if !c.awaitDatabase(ctx) {
			return nil
		}
		c.setAway(false)
		c.observe(Membership{Member: c.cfg.ID, At: time.Now(), InGroup: true, Why: "the database answers again"})
		c.log.Info("the database answers again: joining the group")
	}
}

// session is one membership of the group: a new group client polls and
// processes until ctx is done, an error, or the database is away.
func (c *Consumer) session(ctx context.Context) (err error) {
	opts := append(append([]kgo.Opt{}, c.base...), c.groupOptions()...)
	if len(c.cfg.Hooks) > 0 {
		opts = append(opts, kgo.WithHooks(c.cfg.Hooks...))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	c.group.Store(cl)
	c.scope.Store(nil) // looked up again: the topic may have been recreated
	defer func() {
		// Leaving the group hands the partitions to the others at once
		// instead of after the session timeout.
		if errors.Is(err, errTopicRecreated) {
			c.commits.take(nil) // offsets of the old topic mean nothing in the new one
		} else {
			c.commitWithin(ctx, cl, nil, closeWait)
		}
		cl.AllowRebalance()
		memberID, _ := cl.GroupMetadata() // KIP-848's leave names the member
		c.closeWithin(cl, closeWait)
		c.group.Store(nil)
		if err == nil || errors.Is(err, errDatabaseAway) {
			c.leaveStatic(memberID)
		}
	}()
	errWait := newBackoff()
	for {
		pctx, cancelPoll := c.pollContext(ctx)
		fetches := c.poll(pctx, cl)
		cancelPoll()
		if fetches.IsClientClosed() || ctx.Err() != nil && fetches.Empty() {
			return nil
		}
		// franz-go retries what can be retried by itself; what reaches us is
		// logged (the logger says a repeated error once, then how often) and
		// the partition is fetched again, never skipped.
		var fatal error
		failed, unknownTopic := false, false
		fetches.EachError(func(t string, p int32, err error) {
			switch {
			case errors.Is(err, context.Canceled):
				return
			case t == "" && errors.Is(err, context.DeadlineExceeded):
				return // the poll ended for the pending commit (pollContext)
			case errors.Is(err, kerr.FencedInstanceID):
				fatal = fmt.Errorf("another consumer joined group %s with the id %q, and the group fenced this one: consumer ids must be unique: %w",
					c.cfg.Group, c.cfg.InstanceID, err)
			case isUnknownTopic(err):
				unknownTopic = true
			}
			failed = true
			c.log.Error("fetch error", slog.String("topic", t), slog.Int("partition", int(p)), slog.Any("err", err))
		})
		if fatal != nil {
			return fatal
		}
		if unknownTopic {
			if err := c.checkTopic(ctx); err != nil {
				return err
			}
		}
		if err := c.checkFetched(ctx, fetches); err != nil {
			return err
		}
		if all := fetches.Records(); len(all) > 0 {
			// The batch in hand is finished even when ctx is cancelled,
			// within the shutdown budget.
			recs, markers := splitMarkers(all)
			wctx, cancel := c.workContext(ctx)
			err := c.process(wctx, cl, recs, markers)
			cancel()
			if err != nil {
				return err
			}
			c.recordLag(fetches)
		}
		c.commitDue(ctx, cl)
		cl.AllowRebalance()
		// A poll that brings only errors comes back at once: the next waits,
		// longer each time, so that an error that lasts is no busy loop.
		if !failed || len(fetches.Records()) > 0 {
			errWait.Reset()
			continue
		}
		select {
		case <-time.After(errWait.NextBackOff()):
		case <-ctx.Done():
		}
	}
}

// closeWait bounds how long a stopping member waits for its group client to
// close. Caught in the middle of joining a rebalance, the client can wait
// for the coordinator to finish it, which waits for every member, a dead
// one too, up to its session timeout: longer than an orchestrator's grace
// between its stop signal and its kill.
const closeWait = 2 * time.Second

// closeWithin closes cl, or goes on without it after d: a member that
// stops has nothing left to do with it, and its partitions are handed over
// by the LeaveGroup that follows, or after the session timeout.
func (c *Consumer) closeWithin(cl *kgo.Client, d time.Duration) {
	closed := make(chan struct{})
	go func() { defer close(closed); cl.Close() }()
	select {
	case <-closed:
	case <-time.After(d):
		c.log.Warn("the group client did not close in time; going on without it", slog.Duration("waited", d))
	}
}

// followUpWait bounds the second look poll takes after a small poll.
const followUpWait = 500 * time.Microsecond

// waitedPoll is how long a poll must have waited for its records for poll
// to take them as the newest the broker has: they came in a fetch answered
// while this member was waiting, not one that sat in the client's buffer.
const waitedPoll = 200 * time.Microsecond

// poll returns the next records. The client keeps one fetch in flight per
// broker and sends the next only once the previous one has been polled, so
// the records that reached the broker while the last batch was being written
// are, after a poll, one quick fetch away rather than in hand: left there,
// they would wait for a whole batch more to be written. When a poll brings
// less than a batch (a topic that is not being drained but followed, where
// latency is what counts) and found its records in hand, poll takes that
// fetch too if it comes back within followUpWait.
//
// A poll that waited for its records needs no second look: they came in a
// fetch the broker answered a moment ago, with everything it had, and the
// next fetch would find nothing. That is every poll of a topic followed at a
// few orders a second, and the second look would cost each of them a timer,
// a fetch and a wake-up for nothing.
func (c *Consumer) poll(ctx context.Context, cl *kgo.Client) kgo.Fetches {
	most := c.cfg.BatchSize * pollBatches
	start := time.Now()
	fetches := cl.PollRecords(ctx, most)
	n := len(fetches.Records())
	if n == 0 || n >= c.cfg.BatchSize || time.Since(start) >= waitedPoll {
		return fetches
	}
	fctx, cancel := context.WithTimeout(ctx, followUpWait)
	defer cancel()
	more := cl.PollRecords(fctx, most-n)
	if fctx.Err() != nil && len(more.Records()) == 0 {
		return fetches // nothing came: what more holds is the poll's own timeout
	}
	return append(fetches, more...)
}

func (c *Consumer) setAway(away bool) {
	c.away.Store(away)
	v := 0.0
	if away {
		v = 1
	}
	c.cfg.Metrics.DatabaseAway.Set(v)
}

// awaitDatabase waits, with backoff, until the database answers and takes
// writes; false when ctx ended first. Any answer would not do: a server that
// refuses writes (a standby, during a failover) answers reads, and a member
// that joined again on that would fail its first batch and leave again,
// every AwayAfter, each time making the group rebalance.
func (c *Consumer) awaitDatabase(ctx context.Context) bool {
	wait := newBackoff()
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.store.Writable(pctx)
		cancel()
		if err == nil {
			return true
		}
		select {
		case <-time.After(wait.NextBackOff()):
		case <-ctx.Done():
			return false
		}
	}
}

// workContext is not cancelled by ctx until ShutdownTimeout after ctx is done.
func (c *Consumer) workContext(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(c.cfg.ShutdownTimeout, cancel)
		context.AfterFunc(wctx, func() { t.Stop() })
	})
	return wctx, func() { stop(); cancel() }
}

// Ready reports whether this member can do its work: the circuit breaker is
// closed and a Kafka broker answers. (The database is checked by the caller,
// which owns the pool.)
func (c *Consumer) Ready(ctx context.Context) error {
	if c.away.Load() {
		return errors.New("out of the group until the database answers and takes writes")
	}
	if err := c.schemaError(); err != nil {
		return fmt.Errorf("paused: the database refuses the batch (%w); apply the migrations (foodpipe migrate up) or restore the table, column or grant, and it goes on", err)
	}
	if st := c.breaker.State(); st != gobreaker.StateClosed {
		return fmt.Errorf("database circuit breaker is %s", st)
	}
	if err := c.pub.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

func (c *Consumer) logStats(every time.Duration) func() {
	return telemetry.Every(every, func() {
		s := c.Stats()
		c.log.Info("consumer stats", slog.Int64("processed", s.Processed), slog.Int64("duplicates", s.Duplicates),
			slog.Int64("invalid", s.Invalid), slog.Int64("failures", s.Failures),
			slog.Float64("batch_ms", float64(s.LastBatch.Microseconds())/1000),
			slog.String("breaker", c.breaker.State().String()))
	})
}
