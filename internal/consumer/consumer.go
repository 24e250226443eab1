// Package consumer reads orders from Kafka as a member of a consumer group,
// validates them, writes them to PostgreSQL in batches and only then commits
// the offsets.
//
// The order of those steps is the delivery guarantee. Kafka offsets are
// committed after the database transaction, so a crash between the two makes
// Kafka re-deliver orders that are already stored; they are recognised by
// partsid and counted as duplicates. And because each transaction also
// stores the next offset of every partition it covers (table
// consumer_offsets), a restarted consumer resumes from the database's
// position when it is ahead of Kafka's: the effect in the database is exactly
// once, whatever crashes.
package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/sony/gobreaker/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"foodpipe/internal/dlq"
	"foodpipe/internal/fault"
	"foodpipe/internal/order"
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
	// PublishDeadLetters hands up to limit of the group's recorded, unpublished
	// dead letters to publish and marks those it published (one error per
	// letter, nil when published).
	PublishDeadLetters(ctx context.Context, group string, limit int,
		publish func(context.Context, []store.DeadLetter) []error) (int, error)
}

// Config says how the consumer runs.
type Config struct {
	ID        string // this member's name in logs and stats
	Group     string
	Topic     string
	DLQTopic  string
	BatchSize int
	// SessionTimeout is how soon a crashed member's partitions move to the
	// others; 0 keeps the client's default (45 s).
	SessionTimeout time.Duration
	// DBRetries is how many times a failed write is retried, with
	// exponential backoff, before the circuit breaker opens.
	DBRetries int
	// StatsInterval is how often counters are logged; 0 means never.
	StatsInterval time.Duration
	// ShutdownTimeout bounds finishing the batch in hand after a stop signal.
	ShutdownTimeout time.Duration
	// Writers is how many partitions' batches are written at once, each
	// on its own database connection; 0 means 3.
	Writers int
	// InstanceID, when set, makes this member static (Kafka's
	// group.instance.id, KIP-345): a member that crashes and restarts with
	// the same id takes its place back at once, with its partitions, instead
	// of the group waiting a session timeout for the crashed one and then
	// rebalancing. Two live members must never share it: the group fences
	// the older one, whose Run then fails.
	InstanceID string
	// ClientID, when set, names this member's Kafka client, so that the
	// group's member list (foodpipe status, kafka-consumer-groups.sh) shows
	// which consumer owns which partitions.
	ClientID string
	// Metrics receives the consumer's counters; nil keeps them unexported.
	Metrics *telemetry.Metrics
	// Observe, when set, is handed each Event as it happens.
	Observe func(Event)
	// Hooks observe the group member's Kafka client (kprom's metrics, for
	// one). A new client is made for each session in the group, one at a
	// time, so a hook may register per client and unregister on close.
	Hooks []kgo.Hook
}

// writeTimeout bounds one attempt at writing a batch.
const writeTimeout = 15 * time.Second

// RebalanceTimeout is how long a rebalance waits for a member to finish the
// batch in hand: one write attempt and some margin.
const RebalanceTimeout = writeTimeout + 5*time.Second

// AwayAfter is how long a batch may keep failing to be written before this
// member leaves the group until the database answers (see Run). With the
// leave and the others' rejoin it stays within RebalanceTimeout, the bound a
// rebalance puts on a member stuck on its batch.
const AwayAfter = writeTimeout

// errDatabaseAway ends a session: the database has not taken a batch for AwayAfter.
var errDatabaseAway = errors.New("database away")

// Stats are the consumer's counters.
type Stats struct {
	Processed  int64 // orders newly stored
	Duplicates int64 // orders already stored with the same content
	Invalid    int64 // messages sent to the dead-letter topic
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
	// schemaErr is set while the database refuses batches for their
	// schema or grants (see write); guarded by failMu.
	schemaErr error

	processed, duplicates, invalid, failures, batches atomic.Int64
	lastBatch                                         atomic.Int64

	mu    sync.Mutex
	owned map[int32]bool
	scope atomic.Value // string: see offsetScope
}

func (c *Consumer) assign(parts []int32, add, lost bool) {
	c.mu.Lock()
	for _, p := range parts {
		if add {
			c.owned[p] = true
		} else {
			delete(c.owned, p)
			c.cfg.Metrics.ConsumerLag.DeleteLabelValues(telemetry.Partition(p))
		}
	}
	owned := c.assignedLocked()
	c.mu.Unlock()
	c.observe(Assigned{Member: c.cfg.ID, At: time.Now(), Owned: owned, Lost: lost})
}

// Assigned returns the partitions this member owns now, in order.
func (c *Consumer) Assigned() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.assignedLocked()
}

func (c *Consumer) assignedLocked() []int32 {
	out := make([]int32, 0, len(c.owned))
	for p := range c.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// ID is this member's name.
func (c *Consumer) ID() string { return c.cfg.ID }

// groupOptions are the group settings a consumer's client adds to the base options.
func (c *Consumer) groupOptions() []kgo.Opt {
	cfg, log, m := c.cfg, c.log, c.cfg.Metrics
	opts := []kgo.Opt{
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		// A new group starts from the beginning of the topic: no order that
		// was produced before the first consumer started is skipped.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Offsets are committed by hand, after the database commit.
		kgo.DisableAutoCommit(),
		// No rebalance can take a partition away while a polled batch is
		// being written: the batch is finished and committed first, so two
		// members never write the same partition at once.
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(250 * time.Millisecond),
		// A killed consumer sends no LeaveGroup; the coordinator notices it
		// is gone only when its heartbeats stop for the session timeout, and
		// its partitions wait that long. Heartbeats run on their own
		// goroutine, so a short timeout does not misfire on slow batches.
		kgo.SessionTimeout(cmp.Or(cfg.SessionTimeout, 45*time.Second)),
		kgo.HeartbeatInterval(cmp.Or(cfg.SessionTimeout, 45*time.Second) / 3),
		// A rebalance waits this long for a live member to finish its
		// batch and rejoin; then the coordinator drops it and hands its
		// partitions to the others. A member stuck on its database (cut
		// off, or frozen) holds its partitions no longer than this, and
		// when it wakes the offset fence refuses its batch.
		kgo.RebalanceTimeout(RebalanceTimeout),
		kgo.AdjustFetchOffsetsFn(func(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
			return c.adjustOffsets(ctx, offsets)
		}),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
			c.assign(parts[cfg.Topic], true, false)
			m.Rebalances.Inc()
			log.Info("partitions assigned", slog.Any("partitions", parts[cfg.Topic]), slog.Any("owned", c.Assigned()))
		}),
		// Revoked: a rebalance moves partitions to other members. Lost: this
		// member was dropped from the group (it missed its session timeout).
		// Either way, with BlockRebalanceOnPoll, no batch of those partitions
		// is in flight here any more.
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
			c.assign(parts[cfg.Topic], false, false)
			m.Rebalances.Inc()
			log.Info("partitions revoked", slog.Any("partitions", parts[cfg.Topic]), slog.Any("owned", c.Assigned()))
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
			c.assign(parts[cfg.Topic], false, true)
			m.Rebalances.Inc()
			log.Warn("partitions lost", slog.Any("partitions", parts[cfg.Topic]))
		}),
	}
	if cfg.ClientID != "" {
		opts = append(opts, kgo.ClientID(cfg.ClientID))
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	return opts
}

// leaveStatic takes a static member out of the group when it stops on
// purpose. A static member's client does not leave on close, so that a
// restart slips back in without a rebalance; a consumer that is stopped
// should hand its partitions over at once instead, as a dynamic one does.
func (c *Consumer) leaveStatic() {
	if c.cfg.InstanceID == "" {
		return
	}
	cl, err := kgo.NewClient(c.base...)
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := kadm.NewClient(cl).LeaveGroup(ctx, kadm.LeaveGroup(c.cfg.Group).InstanceIDs(c.cfg.InstanceID).Reason("consumer stopped"))
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		c.log.Warn("leaving the group failed; the partitions move after the session timeout", slog.Any("err", err))
	}
}

// adjustOffsets starts each assigned partition from the offset stored with
// the orders when it is ahead of Kafka's committed one: that happens when a
// consumer crashed after its database commit but before its Kafka commit.
func (c *Consumer) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	scope, err := c.offsetScope(ctx)
	if err != nil {
		return nil, err
	}
	stored, err := c.store.Offsets(ctx, c.cfg.Group, scope)
	if err != nil {
		return nil, fmt.Errorf("read stored offsets: %w", err)
	}
	for p, o := range offsets[c.cfg.Topic] {
		next, ok := stored[p]
		if !ok {
			continue
		}
		if committed := o.EpochOffset().Offset; next > committed {
			c.log.Info("resuming from the database's offset", slog.Int("partition", int(p)),
				slog.Int64("kafka_committed", committed), slog.Int64("stored", next))
			offsets[c.cfg.Topic][p] = kgo.NewOffset().At(next).WithEpoch(-1)
		}
	}
	return offsets, nil
}

// offsetScope names the topic in the offsets table as name@id. Offsets
// belong to one incarnation of a topic: when a topic is deleted and created
// again (or a new cluster is used, as every demo run does), its offsets start
// at zero, and the old ones must not make the consumer skip the new orders.
func (c *Consumer) offsetScope(ctx context.Context) (string, error) {
	if s, ok := c.scope.Load().(string); ok {
		return s, nil
	}
	md, err := kadm.NewClient(c.pub).ListTopics(ctx, c.cfg.Topic)
	if err != nil {
		return "", fmt.Errorf("read topic metadata: %w", err)
	}
	scope := c.cfg.Topic
	if td, ok := md[c.cfg.Topic]; ok && td.ID != (kadm.TopicID{}) {
		scope += "@" + td.ID.String()
	}
	c.scope.Store(scope)
	return scope, nil
}

// New builds a consumer; base are the client options from kafka.ClientOpts.
func New(base []kgo.Opt, st Store, cfg Config, log *slog.Logger) (*Consumer, error) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 1000
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 8 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = telemetry.NewMetrics()
	}
	if cfg.Writers <= 0 {
		cfg.Writers = 3
	}
	log = log.With(slog.String("consumer", cfg.ID))
	c := &Consumer{base: base, store: st, cfg: cfg, log: log, owned: map[int32]bool{},
		deadKick: make(chan struct{}, 1)}
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
	defer func() {
		// Leaving the group hands the partitions to the others at once
		// instead of after the session timeout.
		cl.AllowRebalance()
		cl.Close()
		c.group.Store(nil)
		if err == nil || errors.Is(err, errDatabaseAway) {
			c.leaveStatic()
		}
	}()
	for {
		fetches := cl.PollRecords(ctx, c.cfg.BatchSize*pollBatches)
		if fetches.IsClientClosed() || ctx.Err() != nil && fetches.Empty() {
			return nil
		}
		// franz-go retries what can be retried by itself; what reaches us is
		// logged and the partition is fetched again, never skipped.
		var fatal error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, kerr.FencedInstanceID) {
				fatal = fmt.Errorf("another consumer joined group %s with the id %q, and the group fenced this one: consumer ids must be unique: %w",
					c.cfg.Group, c.cfg.InstanceID, err)
			}
			if !errors.Is(err, context.Canceled) {
				c.log.Error("fetch error", slog.String("topic", t), slog.Int("partition", int(p)), slog.Any("err", err))
			}
		})
		if fatal != nil {
			return fatal
		}
		if recs := fetches.Records(); len(recs) > 0 {
			// The batch in hand is finished even when ctx is cancelled,
			// within the shutdown budget.
			wctx, cancel := c.workContext(ctx)
			err := c.process(wctx, cl, recs)
			cancel()
			if err != nil {
				return err
			}
			c.recordLag(fetches)
		}
		cl.AllowRebalance()
	}
}

func (c *Consumer) setAway(away bool) {
	c.away.Store(away)
	v := 0.0
	if away {
		v = 1
	}
	c.cfg.Metrics.DatabaseAway.Set(v)
}

// awaitDatabase waits until the database answers, reading the stored
// offsets with backoff; false when ctx ended first.
func (c *Consumer) awaitDatabase(ctx context.Context) bool {
	wait := newBackoff()
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.store.Offsets(pctx, c.cfg.Group, c.cfg.Topic)
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

// pollBatches is how many batches one poll may take.
const pollBatches = 4

// prepared is a batch decoded and ready to write.
type prepared struct {
	recs  []*kgo.Record
	batch store.Batch
}

// process handles the records of one poll. Each partition's records are
// written in order, in batches of BatchSize, each batch in its own
// transaction with its dead letters; different partitions are written side
// by side, up to Writers at a time, so that PostgreSQL works on several
// COPYs at once while this process decodes the next batches. Then one Kafka
// commit covers what was written.
//
// A partition whose batch the offset fence refuses (another member stored
// past it) is left alone: nothing more of it is written or committed here,
// and it is fetched again from the database's offset. If this member lost
// the partition, the rebalance it has not seen yet takes it away; if it
// still owns it, it goes on from where the database says.
func (c *Consumer) process(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	scope, err := c.offsetScope(ctx)
	if err != nil {
		return err
	}
	parts := byPartition(recs)
	written := make([]*kgo.Record, len(parts)) // last record stored, per partition
	fenced := make([]bool, len(parts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.cfg.Writers)
	for i, part := range parts {
		g.Go(func() error {
			for len(part) > 0 {
				n := min(len(part), c.cfg.BatchSize)
				err := c.writePrepared(gctx, c.prepare(scope, part[:n]))
				if errors.Is(err, store.ErrStaleOffsets) {
					c.log.Warn("partition fenced: another member stored past this batch; not writing it",
						slog.Int("partition", int(part[0].Partition)), slog.Int64("from", part[0].Offset), slog.Any("err", err))
					c.cfg.Metrics.Fenced.Inc()
					fenced[i] = true
					return nil
				}
				if err != nil {
					return err
				}
				written[i] = part[n-1]
				part = part[n:]
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := c.refetchFenced(ctx, cl, scope, parts, fenced); err != nil {
		return err
	}

	// Only now, with the orders safe in PostgreSQL, is Kafka told they are
	// done. If this commit fails the orders come again and are recognised
	// as duplicates, or skipped thanks to the offsets stored with them.
	var commit []*kgo.Record
	for i, r := range written {
		if r != nil && !fenced[i] {
			commit = append(commit, r)
		}
	}
	if len(commit) == 0 {
		return nil
	}
	if err := cl.CommitRecords(ctx, commit...); err != nil {
		c.log.Warn("offset commit failed; the database holds the position", slog.Any("err", err))
	}
	return nil
}

// refetchFenced moves each fenced partition's fetch position to the offset
// the database holds, so that nothing past this poll is skipped nor fetched
// twice. It runs on the polling goroutine, before AllowRebalance, as
// SetOffsets requires.
func (c *Consumer) refetchFenced(ctx context.Context, cl *kgo.Client, scope string, parts [][]*kgo.Record, fenced []bool) error {
	if !slices.Contains(fenced, true) {
		return nil
	}
	stored, err := c.store.Offsets(ctx, c.cfg.Group, scope)
	if err != nil {
		return fmt.Errorf("read stored offsets: %w", err)
	}
	set := map[int32]kgo.EpochOffset{}
	for i, part := range parts {
		if fenced[i] {
			set[part[0].Partition] = kgo.EpochOffset{Epoch: -1, Offset: stored[part[0].Partition]}
		}
	}
	cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{c.cfg.Topic: set})
	return nil
}

// byPartition splits records by partition, keeping their order.
func byPartition(recs []*kgo.Record) [][]*kgo.Record {
	idx := map[int32]int{}
	var out [][]*kgo.Record
	for _, r := range recs {
		i, ok := idx[r.Partition]
		if !ok {
			i = len(out)
			idx[r.Partition] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], r)
	}
	return out
}

// prepare decodes and validates records into a batch and its dead letters.
func (c *Consumer) prepare(scope string, recs []*kgo.Record) prepared {
	p := prepared{recs: recs, batch: store.Batch{Group: c.cfg.Group, Rows: make([]store.Row, 0, len(recs))}}
	offsets := map[int32]*store.PartitionOffset{}
	var parts []int32
	for _, r := range recs {
		po := offsets[r.Partition]
		if po == nil {
			po = &store.PartitionOffset{Topic: scope, Partition: r.Partition, From: r.Offset}
			offsets[r.Partition] = po
			parts = append(parts, r.Partition)
		}
		po.Next = r.Offset + 1
		o, err := order.Decode(r.Value)
		if err != nil {
			p.batch.Dead = append(p.batch.Dead, deadLetterOf(scope, r, string(order.ReasonOf(err)), err))
			continue
		}
		p.batch.Rows = append(p.batch.Rows, store.Row{Order: o, Partition: r.Partition, Offset: r.Offset})
	}
	for _, part := range parts {
		p.batch.Offsets = append(p.batch.Offsets, *offsets[part])
	}
	p.batch.SetAside = func(row store.Row, err error) store.DeadLetter {
		reason := dlq.ReasonRejected
		if errors.Is(err, store.ErrConflict) {
			reason = dlq.ReasonConflict
		}
		return deadLetterOf(scope, recordOf(recs, row), reason, err)
	}
	return p
}

// writePrepared writes one prepared batch. Its dead letters are recorded in
// the same transaction, so they are durable before the offsets that cover
// them are stored, and are published to the dead-letter topic afterwards.
func (c *Consumer) writePrepared(ctx context.Context, p prepared) error {
	batch := &p.batch
	res, err := c.write(ctx, batch)
	if err != nil {
		return err
	}
	if res.DeadLetters > 0 {
		// A crash here, after the commit and before the publish, must not
		// lose a dead letter: the next consumer of the group publishes it.
		fault.Crash("consumer.dead-letters-recorded")
		c.deadRecorded(batch, res)
	}
	for _, r := range res.Duplicates {
		c.log.Info("duplicate order skipped", telemetry.OrderID(r.Order.OrderID),
			slog.Int("partition", int(r.Partition)), slog.Int64("offset", r.Offset))
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		for _, r := range batch.Rows {
			c.log.Debug("order processed", telemetry.OrderID(r.Order.OrderID),
				slog.Int("partition", int(r.Partition)), slog.Int64("offset", r.Offset))
		}
	}
	c.processed.Add(int64(res.Inserted))
	c.duplicates.Add(int64(len(res.Duplicates)))
	c.batches.Add(1)
	c.recordStored(batch, res)
	return nil
}

// write stores the batch, retrying transient failures with backoff and
// waiting out an open circuit breaker: it returns only when the batch is
// stored, the shutdown budget is spent, or the error is not transient.
func (c *Consumer) write(ctx context.Context, b *store.Batch) (store.Result, error) {
	wait, schemaWait := newBackoff(), newSchemaBackoff()
	var failingSince time.Time
	defer c.batchDone(b)
	for attempt := 1; ; attempt++ {
		start := time.Now()
		res, err := c.breaker.Execute(func() (store.Result, error) {
			// A database that stops answering (a dropped network, not a
			// refused connection) must not hang the write for ever.
			actx, cancel := context.WithTimeout(ctx, writeTimeout)
			defer cancel()
			res, err := c.store.WriteBatch(actx, *b)
			if store.IsTransient(err) {
				c.batchFailed(b) // before the breaker asks ReadyToTrip
			}
			return res, err
		})
		if err == nil {
			took := time.Since(start)
			c.lastBatch.Store(int64(took))
			c.cfg.Metrics.DBBatchSeconds.Observe(took.Seconds())
			c.setSchemaError(nil)
			return res, nil
		}
		switch {
		case errors.Is(err, store.ErrStaleOffsets):
			// Another member stored past this batch: it owns the partition
			// now, or owned it after this member last read the stored offset.
			return store.Result{}, err
		case store.IsSchema(err):
			// Pause, holding the batch, until a person fixes the schema or
			// the grants: exiting would stop the pipeline just the same,
			// and every restart would meet the same error.
			c.failures.Add(1)
			c.setSchemaError(err)
			select {
			case <-time.After(schemaWait.NextBackOff()):
			case <-ctx.Done():
				return store.Result{}, fmt.Errorf("write batch: gave up at shutdown, offsets not committed: %w", err)
			}
			continue
		case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		case store.IsTransient(err):
			c.failures.Add(1)
			c.log.Warn("database write failed, retrying", slog.Int("attempt", attempt), slog.Any("err", err))
		default:
			c.failures.Add(1)
			return store.Result{}, err
		}
		if failingSince.IsZero() {
			failingSince = start
		} else if time.Since(failingSince) >= AwayAfter {
			return store.Result{}, fmt.Errorf("%w: %w", errDatabaseAway, err)
		}
		pause := wait.NextBackOff()
		if left := AwayAfter - time.Since(failingSince); left < pause {
			pause = max(left, 0) // the last attempt runs at the deadline
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return store.Result{}, fmt.Errorf("write batch: gave up at shutdown, offsets not committed: %w", err)
		}
	}
}

// Ready reports whether this member can do its work: the circuit breaker is
// closed and a Kafka broker answers. (The database is checked by the caller,
// which owns the pool.)
func (c *Consumer) Ready(ctx context.Context) error {
	if c.away.Load() {
		return errors.New("out of the group until the database answers")
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

// recordStored updates the metrics for a stored batch and reports it. Only
// newly stored orders count towards latency: a re-delivered one is as old
// as the outage that caused its re-delivery.
func (c *Consumer) recordStored(b *store.Batch, res store.Result) {
	m := c.cfg.Metrics
	m.OrdersProcessed.Add(float64(res.Inserted))
	m.OrdersDuplicate.Add(float64(len(res.Duplicates)))
	var skipped map[[2]int64]bool // nil, and never looked into, for a batch all stored
	if n := len(res.Duplicates) + len(res.Conflicts) + len(res.Rejected); n > 0 {
		skipped = make(map[[2]int64]bool, n)
		for _, r := range res.Duplicates {
			skipped[[2]int64{int64(r.Partition), r.Offset}] = true
		}
		for _, r := range res.Conflicts {
			skipped[[2]int64{int64(r.Partition), r.Offset}] = true
		}
		for _, r := range res.Rejected {
			skipped[[2]int64{int64(r.Row.Partition), r.Row.Offset}] = true
		}
	}
	now := time.Now()
	for _, r := range b.Rows {
		if !skipped[[2]int64{int64(r.Partition), r.Offset}] {
			m.E2ELatency.Observe(now.Sub(r.Order.CreatedAt).Seconds())
		}
	}
	if c.cfg.Observe != nil && len(b.Offsets) > 0 {
		// A batch covers one partition (see process).
		c.observe(BatchStored{Member: c.cfg.ID, At: now, Partition: b.Offsets[0].Partition,
			Inserted: res.Inserted, Duplicates: len(res.Duplicates), DeadLetters: res.DeadLetters})
	}
}

// recordLag sets each fetched partition's lag: the records behind its high
// watermark once this fetch is processed.
func (c *Consumer) recordLag(fetches kgo.Fetches) {
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if n := len(p.Records); n > 0 && p.HighWatermark >= 0 {
			lag := p.HighWatermark - (p.Records[n-1].Offset + 1)
			c.cfg.Metrics.ConsumerLag.WithLabelValues(telemetry.Partition(p.Partition)).Set(float64(max(lag, 0)))
		}
	})
}

func recordOf(recs []*kgo.Record, row store.Row) *kgo.Record {
	for _, r := range recs {
		if r.Partition == row.Partition && r.Offset == row.Offset {
			return r
		}
	}
	return &kgo.Record{Topic: "", Partition: row.Partition, Offset: row.Offset}
}

// newSchemaBackoff paces the retries of a batch the schema refuses: 1 s,
// then about twice as long each time, up to 30 s, since a person has to act.
func newSchemaBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = time.Second, 30*time.Second
	return b
}

// setSchemaError records why the database refuses batches, logging it once,
// with what to do; nil clears it once a batch goes through.
func (c *Consumer) setSchemaError(err error) {
	c.failMu.Lock()
	prev := c.schemaErr
	c.schemaErr = err
	c.failMu.Unlock()
	switch {
	case err == nil && prev != nil:
		c.log.Info("the database takes batches again; going on")
	case err != nil && (prev == nil || prev.Error() != err.Error()):
		c.log.Error("the database refuses the batch for its schema or grants: paused, holding the batch, trying again with backoff; apply the migrations (foodpipe migrate up) or restore the table, column or grant",
			slog.Any("err", err))
	}
}

func (c *Consumer) schemaError() error {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	return c.schemaErr
}

// batchFailed counts one more failed attempt of batch b; batchDone forgets
// it; worstBatch is the most failed attempts of any batch in flight.
func (c *Consumer) batchFailed(b *store.Batch) {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	if c.failing == nil {
		c.failing = map[*store.Batch]int{}
	}
	c.failing[b]++
}

func (c *Consumer) batchDone(b *store.Batch) {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	delete(c.failing, b)
}

func (c *Consumer) worstBatch() int {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	worst := 0
	for _, n := range c.failing {
		worst = max(worst, n)
	}
	return worst
}

// newBackoff waits 200 ms, then about twice as long each time, up to 5 s.
func newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 200*time.Millisecond, 5*time.Second
	return b
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
