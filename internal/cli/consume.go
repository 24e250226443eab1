package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"foodpipe/internal/config"
	"foodpipe/internal/consumer"
	"foodpipe/internal/pipeline"
	"foodpipe/internal/store"
	"foodpipe/internal/telemetry"
)

func runConsume(ctx context.Context, env *Env, args []string) error {
	return runMember(ctx, env, "consume", args, member{groupVar: "KAFKA_GROUP",
		group: func(c config.Config) string { return c.Group },
		sink:  func(st *store.Store) consumer.Store { return st }})
}

// member is what a kind of group member reads and writes.
type member struct {
	groupVar string                            // the variable naming its group
	group    func(config.Config) string        // its group
	sink     func(*store.Store) consumer.Store // what it writes: the orders, or the aggregates
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
	f.bind("dlq-topic", "KAFKA_DLQ_TOPIC")
	f.bind("batch-size", "CONSUMER_BATCH_SIZE")
	f.bind("migrate", "DB_MIGRATE")
	host, _ := os.Hostname()
	id := f.String("id", fmt.Sprintf("%s-%d", host, os.Getpid()),
		"this consumer's name in the group and in logs; a consumer restarted with the same id takes its place back at once (static membership), so ids must be unique")
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	cfg.Group = kind.group(cfg)
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(consumer.MemoryLimit(cfg.BatchSize))
	}
	st, err := pipeline.OpenStore(ctx, cfg, cfg.Migrate)
	if err != nil {
		return stoppedOr(ctx, err)
	}
	defer st.Close()
	m := telemetry.NewMetrics()
	c, err := pipeline.NewConsumer(ctx, cfg, kind.sink(st), *id, env.Log, m, nil)
	if err != nil {
		return stoppedOr(ctx, err)
	}
	stop, err := serveMetrics(cfg, m, func(ctx context.Context) error {
		// Writable, not a ping: a read-only database (a standby, during a
		// failover) answers, but the member can do none of its work.
		if err := st.Writable(ctx); err != nil {
			return err
		}
		return c.Ready(ctx)
	}, env.Log)
	if err != nil {
		return err
	}
	defer stop()
	env.Log.Info("consumer starting", slog.String("consumer", *id), slog.String("group", cfg.Group),
		slog.Int64("memory_limit_mib", debug.SetMemoryLimit(-1)>>20), slog.Any("config", cfg))
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
