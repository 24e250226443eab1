package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/kafka"
	"foodpipe/internal/order"
	"foodpipe/internal/producer"
	"foodpipe/internal/telemetry"
)

func runProduce(ctx context.Context, env *Env, args []string) error {
	f, err := newFlags(env, "produce")
	if err != nil {
		return err
	}
	f.kafkaFlags()
	f.bind("rate", "PRODUCER_RATE")
	f.bind("retries", "PRODUCER_RETRIES")
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
	m := telemetry.NewMetrics()
	cl, err := newProducerClient(ctx, cfg, env.Log, m)
	if err != nil {
		return err
	}
	defer cl.Close()
	stop, err := serveMetrics(cfg, m, func(ctx context.Context) error { return cl.Ping(ctx) }, env.Log)
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

// newProducerClient connects a producer client and makes sure the topics
// exist, so that a fresh broker needs no set-up step. The Kafka client's own
// metrics go to m unless it is nil.
func newProducerClient(ctx context.Context, cfg config.Config, log *slog.Logger, m *telemetry.Metrics) (*kgo.Client, error) {
	opts := append(kafka.ClientOpts(kafkaOptions(cfg, log)), producer.Options(cfg.ProducerRetries, 30*time.Second)...)
	if m != nil {
		opts = append(opts, kafkaMetrics(m))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	if err := prepareTopics(ctx, cl, cfg, log); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// prepareTopics checks a broker answers (FR-1.1.4: a clear error when none
// does) and creates missing topics. A topic with other settings is reported,
// not changed.
func prepareTopics(ctx context.Context, cl *kgo.Client, cfg config.Config, log *slog.Logger) error {
	if err := kafka.Ping(ctx, cl, cfg.Brokers, cfg.ProducerRetries+1); err != nil {
		return err
	}
	results, err := kafka.EnsureTopics(ctx, kadm.NewClient(cl), topicSpecs(cfg)...)
	for _, r := range results {
		switch r.State {
		case kafka.TopicDiffers:
			log.Warn("topic exists with other settings", slog.String("topic", r.Spec.Name), slog.Any("differences", r.Differences))
		case kafka.TopicCreated:
			log.Info("topic created", slog.String("topic", r.Spec.Name), slog.Int("partitions", int(r.Spec.Partitions)))
		}
	}
	if err != nil && !errors.Is(err, kafka.ErrTopicDiffers) {
		log.Warn("could not create topics; assuming they are managed elsewhere", slog.Any("err", err))
	}
	return nil
}
