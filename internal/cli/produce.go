package cli

import (
	"context"
	"fmt"
	"log/slog"
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
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	if *count < 0 || *duration < 0 {
		return fmt.Errorf("%w: --count and --duration must not be negative", ErrUsage)
	}
	m := wire.NewMetrics()
	cl, err := wire.ProducerClient(ctx, cfg, env.Log, env.Log, m)
	if err != nil {
		return err
	}
	defer cl.Close()
	stop, err := wire.ServeMetrics(cfg, m, func(ctx context.Context) error { return cl.Ping(ctx) }, env.Log)
	if err != nil {
		return err
	}
	defer stop()
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	p := producer.New(cl, order.NewGenerator(s, nil), producer.Config{
		Topic: cfg.Topic, Rate: cfg.ProducerRate, Count: *count, Duration: *duration, StatsInterval: cfg.StatsInterval,
		Metrics: m,
	}, env.Log)
	env.Log.Info("producer starting", slog.Any("config", cfg), slog.Int("count", *count), slog.Duration("duration", *duration))
	return p.Run(ctx)
}
