package cli

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/order"
	"foodpipe/internal/producer"
	"foodpipe/internal/wire"
)

func runProduce(ctx context.Context, env *Env, args []string) error {
	f, err := newFlags(env, "produce")
	if err != nil {
		return err
	}
	f.kafkaFlags()
	f.bind("rate", config.ProducerRate)
	f.bind("retries", config.ProducerRetries)
	count := f.Int("count", 0, "stop after this many orders (0: no limit)")
	duration := f.Duration("duration", 0, "stop after this long, e.g. 30s (0: no limit)")
	seed := f.Uint64("seed", 0, "seed of the order generator (0: random); the same seed gives the same orders")
	txn := f.String("transaction", "", "commit or abort: write the --count orders in one Kafka transaction, then end it so")
	hold := f.Duration("hold", 0, "with --transaction, keep it open this long before it ends, e.g. 20s (at most 90s)")
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	if *count < 0 || *duration < 0 || *hold < 0 {
		return fmt.Errorf("%w: --count, --duration and --hold must not be negative", ErrUsage)
	}
	if *txn != "" {
		return produceTransaction(ctx, env, cfg, *txn, *count, *duration, *hold, *seed)
	}
	if *hold > 0 {
		return fmt.Errorf("%w: --hold goes with --transaction", ErrUsage)
	}
	if cfg.ProducerRate > 0 {
		env.followOnOneProcessor()
	}
	m := wire.NewMetrics("")
	cl, err := wire.ProducerClient(ctx, cfg, env.Log, env.Log, m)
	if err != nil {
		return err
	}
	defer cl.Close()
	stop, err := wire.ServeMetrics(cfg, m.Registry, func(ctx context.Context) error { return cl.Ping(ctx) }, env.Log)
	if err != nil {
		return err
	}
	defer stop()
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	p := producer.New(cl, order.NewGenerator(s, nil), producer.Config{
		Topic: cfg.Topic, Rate: cfg.ProducerRate, Count: *count, Duration: *duration, Linger: wire.Linger(cfg),
		StatsInterval: cfg.StatsInterval, Metrics: m,
	}, env.Log)
	env.Log.Info("producer starting", slog.Any("config", cfg), slog.Int("count", *count), slog.Duration("duration", *duration),
		slog.Int("gomaxprocs", runtime.GOMAXPROCS(0)))
	return p.Run(ctx)
}

// The transaction timeout of produce --transaction, the same for every run:
// the embedded broker (kfake) keeps the timeout a transactional id was
// first given, where Kafka takes each run's, so a run that asked for more
// than the first would be aborted early there.
const (
	txnTimeout = 2 * time.Minute
	maxHold    = 90 * time.Second
)

// produceTransaction writes count orders in one transaction and commits or
// aborts it (end), after holding it open for hold.
func produceTransaction(ctx context.Context, env *Env, cfg config.Config, end string, count int, duration, hold time.Duration, seed uint64) error {
	if end != "commit" && end != "abort" {
		return fmt.Errorf("%w: --transaction %q: commit or abort", ErrUsage, end)
	}
	if count < 1 || duration > 0 {
		return fmt.Errorf("%w: --transaction writes --count orders (at least 1), with no --duration", ErrUsage)
	}
	if hold > maxHold {
		return fmt.Errorf("%w: --hold %v: at most %v (the transaction timeout is %v)", ErrUsage, hold, maxHold, txnTimeout)
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	// One transactional id per topic: a second run fences the first, and
	// aborts what it left open.
	cl, err := wire.TransactionalProducerClient(ctx, cfg, "foodpipe-produce-"+cfg.Topic, txnTimeout, env.Log, env.Log, nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	env.Log.Info("producer starting", slog.Any("config", cfg), slog.Int("count", count), slog.String("transaction", end), slog.Duration("hold", hold))
	return producer.RunTransaction(ctx, cl, order.NewGenerator(seed, nil), cfg.Topic, count, hold, end == "commit", env.Log)
}
