package pipeline

// The one place a Config becomes the pipeline's parts: Kafka clients, the
// store, a group member. Every command and the harness build them here.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"foodpipe/internal/config"
	"foodpipe/internal/consumer"
	"foodpipe/internal/kafka"
	"foodpipe/internal/producer"
	"foodpipe/internal/store"
	"foodpipe/internal/telemetry"
)

// KafkaOptions is the one place a Config becomes client options, security included.
func KafkaOptions(cfg config.Config, log *slog.Logger) kafka.Options {
	return kafka.Options{
		Brokers:  cfg.Brokers,
		ClientID: cfg.ClientID,
		Logger:   log,
		TLS:      cfg.TLS,
		TLSCA:    cfg.TLSCA,
		SASL:     kafka.SASL{Mechanism: cfg.SASLMechanism, Username: cfg.SASLUsername, Password: cfg.SASLPassword},
	}
}

// Admin returns a client for topic and group administration, after checking
// a broker answers. Call the returned func to close it.
func Admin(ctx context.Context, cfg config.Config, log *slog.Logger) (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(kafka.ClientOpts(KafkaOptions(cfg, log))...)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka client: %w", err)
	}
	if err := kafka.Ping(ctx, cl, cfg.Brokers, 3); err != nil {
		cl.Close()
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// OpenStore connects to PostgreSQL and, when asked, applies the migrations.
func OpenStore(ctx context.Context, cfg config.Config, migrate bool) (*store.Store, error) {
	st, err := store.Open(ctx, cfg.DatabaseURL, store.MaxConns(cfg.DBMaxConns))
	if err != nil {
		return nil, err
	}
	if migrate {
		if err := st.MigrateUp(ctx); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

// TopicSpecs are the topics the pipeline needs: the orders and their dead letters.
func TopicSpecs(cfg config.Config) []kafka.TopicSpec {
	return []kafka.TopicSpec{
		{Name: cfg.Topic, Partitions: cfg.Partitions, ReplicationFactor: cfg.ReplicationFactor, Retention: cfg.Retention},
		// The dead-letter topic keeps its messages as long as the orders
		// topic; one partition keeps them in the order they failed.
		{Name: cfg.DLQTopic, Partitions: 1, ReplicationFactor: cfg.ReplicationFactor, Retention: cfg.Retention},
	}
}

// PrepareTopics checks a broker answers (FR-1.1.4: a clear error when none
// does) and creates missing topics. A topic with other settings is reported,
// not changed.
func PrepareTopics(ctx context.Context, cl *kgo.Client, cfg config.Config, log *slog.Logger) error {
	if err := kafka.Ping(ctx, cl, cfg.Brokers, cfg.ProducerRetries+1); err != nil {
		return err
	}
	results, err := kafka.EnsureTopics(ctx, kadm.NewClient(cl), TopicSpecs(cfg)...)
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

// ProducerClient connects a producer client and makes sure the topics
// exist, so that a fresh broker needs no set-up step. The Kafka client's own
// metrics go to m unless it is nil.
func ProducerClient(ctx context.Context, cfg config.Config, log *slog.Logger, m *telemetry.Metrics) (*kgo.Client, error) {
	opts := append(kafka.ClientOpts(KafkaOptions(cfg, log)), producer.Options(cfg.ProducerRetries, 30*time.Second, cfg.ProducerLinger)...)
	if m != nil {
		opts = append(opts, kgo.WithHooks(KafkaHook(m)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	if err := PrepareTopics(ctx, cl, cfg, log); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// NewConsumer checks Kafka answers, creates missing topics and builds a
// group member named id. Its metrics go to m, the Kafka client's own with
// them; observe, when not nil, is told the member's events.
func NewConsumer(ctx context.Context, cfg config.Config, st consumer.Store, id string, log *slog.Logger, m *telemetry.Metrics,
	observe func(consumer.Event)) (*consumer.Consumer, error) {
	base := kafka.ClientOpts(KafkaOptions(cfg, log))
	probe, err := kgo.NewClient(base...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	err = PrepareTopics(ctx, probe, cfg, log)
	probe.Close()
	if err != nil {
		return nil, err
	}
	return consumer.New(base, st, consumer.Config{
		ID: id, Group: cfg.Group, Topic: cfg.Topic, DLQTopic: cfg.DLQTopic,
		BatchSize: cfg.BatchSize, Writers: cfg.Writers, DBRetries: cfg.DBRetries, StatsInterval: cfg.StatsInterval,
		SessionTimeout:  cfg.SessionTimeout,
		FetchMaxWait:    cfg.FetchMaxWait,
		ShutdownTimeout: 8 * time.Second,
		ClientID:        cfg.ClientID + "-" + id,
		InstanceID:      id,
		Hooks:           []kgo.Hook{KafkaHook(m)},
		Observe:         observe,
		Metrics:         m,
	}, log)
}

// KafkaHook adds the Kafka client's own metrics (connections, bytes,
// request latency, buffered records) to m's registry, labelled with the
// client id so that several clients in one process stay apart.
func KafkaHook(m *telemetry.Metrics) kgo.Hook {
	return kprom.NewMetrics("foodpipe", kprom.Subsystem("kafka"), kprom.Registry(m.Registry), kprom.WithClientLabel())
}
