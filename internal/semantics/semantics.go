// Package semantics teaches Kafka's delivery semantics by running the two
// weaker ones for real, beside the pipeline's own group, on the same topic.
//
// A teaching member is a group member of its own group, built on kgo with
// nothing of internal/consumer: it polls, writes the batch's orders to a
// table of its own, and commits its offsets to Kafka, in the order its
// semantics says.
//
//   - At most once commits first, then writes. Killed between the two, the
//     member's group resumes after a batch that was never written: those
//     orders are lost, none is ever written twice.
//   - At least once writes first, then commits. Killed between the two, its
//     group reads the batch again and writes it again: nothing is lost, and
//     those orders are stored twice (its table has no unique key, and no
//     offsets are kept beside the rows to tell).
//
// The pipeline's own group (internal/consumer) is the third, the
// exactly-once effect: it stores each batch with its offsets in one
// PostgreSQL transaction and only then tells Kafka, so a member killed
// before its Kafka commit is resumed from the database's offsets. Count
// counts, from the tables, what each group lost and doubled.
//
// Each semantics has a crash point (CrashPoint, package fault) between its
// two steps, so that a test or the demo kills every member where its
// semantics shows, not by luck.
package semantics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/fault"
	"foodpipe/internal/order"
)

// Semantics is a delivery semantics, by its usual name.
type Semantics string

const (
	// AtMostOnce commits the offsets to Kafka before it writes the batch.
	AtMostOnce Semantics = "at-most-once"
	// AtLeastOnce writes the batch, then commits the offsets to Kafka.
	AtLeastOnce Semantics = "at-least-once"
	// ExactlyOnce is the pipeline's own group: rows and offsets in one
	// PostgreSQL transaction, then the commit to Kafka. No teaching member
	// runs it; it is here for its crash point and its counts.
	ExactlyOnce Semantics = "exactly-once"
)

// All are the three semantics, from the weakest.
var All = []Semantics{AtMostOnce, AtLeastOnce, ExactlyOnce}

// Teaching are the semantics a teaching member runs.
var Teaching = []Semantics{AtMostOnce, AtLeastOnce}

var (
	// ErrSemantics is a semantics no teaching member runs.
	ErrSemantics = errors.New("unknown teaching semantics")
	// ErrConfig is a member's Config with a value missing.
	ErrConfig = errors.New("teaching member configuration")
)

// Parse reads a teaching semantics by its name.
func Parse(s string) (Semantics, error) {
	for _, t := range Teaching {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("%w %q: want %s or %s", ErrSemantics, s, AtMostOnce, AtLeastOnce)
}

// Group is the consumer group of a teaching semantics: one of its own, so
// that its committed offsets are apart from every other group's.
func Group(s Semantics) string { return "teach-" + string(s) }

// Groups are the three semantics' groups, in All's order: the two teaching
// groups and orders, the pipeline's own (CONSUMER_GROUP).
func Groups(orders string) []string {
	out := make([]string, 0, len(All))
	for _, s := range All {
		g := orders
		if s != ExactlyOnce {
			g = Group(s)
		}
		out = append(out, g)
	}
	return out
}

// Table is the table a semantics' group stores its orders in.
func Table(s Semantics) string {
	switch s {
	case AtMostOnce:
		return "teach_at_most_once"
	case AtLeastOnce:
		return "teach_at_least_once"
	default:
		return "orders"
	}
}

// CrashPoint is the fault point (FOODPIPE_FAULT) where a member of s is
// killed so that its semantics shows: at most once between its commit and
// its write, at least once between its write and its commit, and the
// pipeline's own member at consumer.before-kafka-commit, where PostgreSQL
// has the rows and the offsets but Kafka has not been told.
func CrashPoint(s Semantics) string {
	switch s {
	case AtMostOnce:
		return "semantics.at-most-once.after-commit"
	case AtLeastOnce:
		return "semantics.at-least-once.after-write"
	default:
		return "consumer.before-kafka-commit"
	}
}

// Config is a teaching member's configuration; every value is required.
type Config struct {
	Semantics Semantics
	// ID names the member in logs and is its static group instance id, so
	// that a member restarted with the same ID takes its place back at once.
	ID    string
	Topic string
	// BatchSize is the most records one poll returns.
	BatchSize                    int
	SessionTimeout, FetchMaxWait time.Duration
	// GroupProtocol is the protocol the member speaks, as the pipeline's
	// members do (CONSUMER_GROUP_PROTOCOL): config.GroupProtocolClassic,
	// or config.GroupProtocolConsumer for KIP-848's.
	GroupProtocol string
}

// Execer writes a batch; a *pgxpool.Pool is one.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Member is a teaching group member. Run it once.
type Member struct {
	cfg Config
	cl  *kgo.Client
	db  Execer
	log *slog.Logger
}

// New builds a member of cfg.Semantics' group on the client options base
// (brokers, security), writing to db.
func New(base []kgo.Opt, db Execer, cfg Config, log *slog.Logger) (*Member, error) {
	if _, err := Parse(string(cfg.Semantics)); err != nil {
		return nil, err
	}
	if cfg.ID == "" || cfg.Topic == "" || cfg.BatchSize < 1 || cfg.SessionTimeout <= 0 || cfg.FetchMaxWait <= 0 ||
		!slices.Contains(config.GroupProtocols, cfg.GroupProtocol) {
		return nil, fmt.Errorf("%w: ID, Topic, BatchSize, SessionTimeout, FetchMaxWait and GroupProtocol (%s) are required: %+v",
			ErrConfig, strings.Join(config.GroupProtocols, " or "), cfg)
	}
	cl, err := kgo.NewClient(append(slices.Clip(base), groupOpts(cfg)...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &Member{cfg: cfg, cl: cl, db: db, log: log.With(slog.String("semantics", string(cfg.Semantics)), slog.String("member", cfg.ID))}, nil
}

// groupOpts are the member's options in its group: the one place they are
// built.
func groupOpts(cfg Config) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.ConsumerGroup(Group(cfg.Semantics)),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.InstanceID(cfg.ID),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Each member commits by hand, where its semantics says.
		kgo.DisableAutoCommit(),
		// A batch is finished, both steps, before a rebalance may move its
		// partitions: what a member loses or doubles is its semantics',
		// not a rebalance's.
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(cfg.SessionTimeout / 3),
		kgo.FetchMaxWait(cfg.FetchMaxWait),
	}
	if cfg.GroupProtocol == config.GroupProtocolConsumer {
		// KIP-848, as the pipeline's members speak it: the broker assigns
		// (its "uniform" assignor, which the client's default balancer
		// names) and decides the session timeout; the two classic options
		// above go unused.
		opts = append(opts, kgo.ServerSideBalancer())
	}
	return opts
}

// Run polls and handles batches until ctx ends; a batch begun is finished
// first. It closes the client when it returns.
func (m *Member) Run(ctx context.Context) error {
	defer func() {
		// A poll blocks rebalances until allowed, and closing waits for
		// them: allowed first, or the close waits forever.
		m.cl.AllowRebalance()
		m.cl.Close()
	}()
	step := m.atMostOnce
	if m.cfg.Semantics == AtLeastOnce {
		step = m.atLeastOnce
	}
	for {
		fetches := m.cl.PollRecords(ctx, m.cfg.BatchSize)
		if ctx.Err() != nil {
			// Records polled but neither committed nor written come again
			// to the group's next member.
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			m.log.Warn("fetch failed", slog.String("topic", topic), slog.Int("partition", int(p)), slog.Any("err", err))
		})
		if recs := fetches.Records(); len(recs) > 0 {
			if err := step(context.WithoutCancel(ctx), recs); err != nil {
				return err
			}
		}
		m.cl.AllowRebalance()
	}
}

// atMostOnce tells Kafka the batch is done, then writes it. Killed between
// the two, the group resumes after a batch that was never written: lost.
func (m *Member) atMostOnce(ctx context.Context, recs []*kgo.Record) error {
	if err := m.cl.CommitRecords(ctx, recs...); err != nil {
		// Not written either: written without its commit, it could be
		// written twice, which this semantics promises never happens.
		m.log.Warn("offset commit failed; the batch is dropped unwritten", slog.Int("records", len(recs)), slog.Any("err", err))
		return nil
	}
	fault.Crash(CrashPoint(AtMostOnce))
	if err := m.write(ctx, recs); err != nil {
		m.log.Error("write failed after the commit: the batch is lost", slog.Int("records", len(recs)), slog.Any("err", err))
	}
	return nil
}

// atLeastOnce writes the batch, then tells Kafka it is done. Killed between
// the two, the group reads the batch again and writes it again: doubled.
func (m *Member) atLeastOnce(ctx context.Context, recs []*kgo.Record) error {
	if err := m.write(ctx, recs); err != nil {
		// Never past a batch not written: the member stops, and the one
		// that takes its place reads the batch again.
		return err
	}
	fault.Crash(CrashPoint(AtLeastOnce))
	if err := m.cl.CommitRecords(ctx, recs...); err != nil {
		m.log.Warn("offset commit failed; the batch will be read and written again", slog.Int("records", len(recs)), slog.Any("err", err))
	}
	return nil
}

// write inserts the batch's valid orders into the semantics' table, one
// row per record, in one statement. A message that is not a valid order is
// left out: the lesson counts orders, and the dead letters are the real
// group's business.
func (m *Member) write(ctx context.Context, recs []*kgo.Record) error {
	ids := make([]string, 0, len(recs))
	parts := make([]int32, 0, len(recs))
	offsets := make([]int64, 0, len(recs))
	for _, r := range recs {
		o, err := order.Decode(r.Value)
		if err != nil {
			continue
		}
		ids, parts, offsets = append(ids, o.OrderID), append(parts, r.Partition), append(offsets, r.Offset)
	}
	if len(ids) == 0 {
		return nil
	}
	sql := "INSERT INTO " + pgx.Identifier{Table(m.cfg.Semantics)}.Sanitize() +
		" (order_id, kafka_partition, kafka_offset) SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])"
	if _, err := m.db.Exec(ctx, sql, ids, parts, offsets); err != nil {
		return fmt.Errorf("write %d orders: %w", len(ids), err)
	}
	return nil
}
