package cli

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"runtime/debug"
	"slices"

	"foodpipe/internal/config"
	"foodpipe/internal/consumer"
	"foodpipe/internal/store"
	"foodpipe/internal/telemetry"
	"foodpipe/internal/wire"
)

func runConsume(ctx context.Context, env *Env, args []string) error {
	return runMember(ctx, env, "consume", args, member{groupVar: config.KafkaGroup,
		group: func(c config.Config) string { return c.Group },
		sink:  func(st *store.Store, _ config.Config, _ *telemetry.Metrics) (consumer.Store, error) { return st, nil }})
}

// member is what a kind of group member reads and writes.
type member struct {
	groupVar *config.Var // the variable naming its group
	// batchVar is the variable of its batch size (--batch-size), when not
	// CONSUMER_BATCH_SIZE's, with its value; nil is CONSUMER_BATCH_SIZE.
	batchVar *config.Var
	batch    func(config.Config) int
	// flags are its own, beside every member's: flag name to variable.
	flags map[string]*config.Var
	group func(config.Config) string // its group
	// sink is what it writes: the orders, the aggregates, or the emails.
	sink func(*store.Store, config.Config, *telemetry.Metrics) (consumer.Store, error)
}

// runMember runs one member of a group until it is stopped.
func runMember(ctx context.Context, env *Env, name string, args []string, kind member) error {
	f, err := newFlags(env, name)
	if err != nil {
		return err
	}
	f.kafkaFlags()
	f.dbFlags()
	f.bind("group", kind.groupVar)
	f.bind("dlq-topic", config.KafkaDLQTopic)
	if kind.batchVar != nil {
		f.bind("batch-size", kind.batchVar)
	} else {
		f.bind("batch-size", config.ConsumerBatchSize)
	}
	f.bind("group-protocol", config.ConsumerGroupProtocol)
	f.bind("migrate", config.DBMigrate)
	for _, name := range slices.Sorted(maps.Keys(kind.flags)) {
		f.bind(name, kind.flags[name])
	}
	id := f.memberID(
		"this consumer's name in the group and in logs; a consumer restarted with the same id takes its place back at once (static membership), so ids must be unique")
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	env.followOnOneProcessor()
	cfg.Group = kind.group(cfg)
	if kind.batch != nil {
		cfg.BatchSize = kind.batch(cfg)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(consumer.MemoryLimit(cfg.BatchSize))
	}
	// The health server is up from the start, so that an orchestrator sees
	// a member that waits for its database alive, and not ready, with why.
	m := wire.NewMetrics(cfg.Group)
	var ready telemetry.Readiness
	ready.NotYet(errors.New("starting: connecting to PostgreSQL"))
	stop, err := wire.ServeMetrics(cfg, m.Registry, ready.Check, env.Log)
	if err != nil {
		return err
	}
	defer stop()
	st, err := wire.AwaitStore(ctx, cfg, cfg.Migrate, env.Log, func(why error) {
		m.DatabaseAway.Set(1)
		ready.NotYet(why)
	})
	m.DatabaseAway.Set(0)
	if err != nil {
		return stoppedOr(ctx, err)
	}
	defer st.Close()
	ready.NotYet(errors.New("starting: connecting to Kafka"))
	sink, err := kind.sink(st, cfg, m)
	if err != nil {
		return err
	}
	c, err := wire.NewConsumer(ctx, cfg, sink, *id, env.Log, env.Log, m, nil)
	if err != nil {
		return stoppedOr(ctx, err)
	}
	ready.Set(func(ctx context.Context) error {
		// Writable, not a ping: a read-only database (a standby, during a
		// failover) answers, but the member can do none of its work (nor
		// can the notifier without its mail server).
		if err := sink.Writable(ctx); err != nil {
			return err
		}
		return c.Ready(ctx)
	})
	env.Log.Info("consumer starting", slog.String("consumer", *id), slog.String("group", cfg.Group),
		slog.Int64("memory_limit_mib", debug.SetMemoryLimit(-1)>>20), slog.Int("gomaxprocs", runtime.GOMAXPROCS(0)), slog.Any("config", cfg))
	return c.Run(ctx)
}

// stoppedOr is nil when the consumer was told to stop while it was starting
// (Ctrl-C during the migrations): that is a clean stop, not a failure.
func stoppedOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil //nolint:nilerr // a stop during start-up is a clean stop: that is the point
	}
	return err
}
