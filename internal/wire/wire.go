// Package wire is the one place a Config becomes the pipeline's parts: Kafka
// clients, the store, a group member. Every command and the harness build
// them here.
package wire

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"foodpipe/internal/config"
	"foodpipe/internal/consumer"
	"foodpipe/internal/dlq"
	"foodpipe/internal/kafka"
	"foodpipe/internal/mail"
	"foodpipe/internal/notify"
	"foodpipe/internal/producer"
	"foodpipe/internal/store"
	"foodpipe/internal/telemetry"
)

// NewMetrics creates a process's metrics, with every reason a dead letter may
// carry (dlq.Reasons) exported at 0 from the start. A group member's carry its
// group as the label group ("" for a process in no group, the producer), so
// that the orders group's sums never take in the analytics group's.
func NewMetrics(group string) *telemetry.Metrics {
	return telemetry.NewMetrics(telemetry.Options{InvalidReasons: dlq.Reasons(), Group: group})
}

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
// a broker answers; log takes the client's own lines. Call the returned func
// to close it.
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

// storeAttemptTimeout bounds one attempt of AwaitStore to connect: a
// server that does not answer at all (packets dropped, not refused) would
// otherwise hold it for as long as the operating system keeps trying.
const storeAttemptTimeout = 10 * time.Second

// storeReminder is how often AwaitStore logs that it still waits.
const storeReminder = time.Minute

// AwaitStore connects to PostgreSQL as OpenStore does, but waits for it, as
// Kafka clients wait for their brokers: while the server cannot be reached
// or refuses for a reason that passes (starting up, read-only during a
// failover: store.IsTransient), it tries again with backoff (200 ms, then
// about twice as long each time, up to 5 s). It logs the wait once, then a
// reminder every minute with the attempts and the time waited, and hands
// waiting, after each failed attempt, an error saying why it waits (for
// /readyz). An error retrying cannot fix (no such database, a wrong
// password) stops it at once, and so does cfg.DBConnectTimeout, when not 0,
// with the last error: either names the server and database, never the
// password. The migrations, when asked, run once the database answers.
func AwaitStore(ctx context.Context, cfg config.Config, migrate bool, log *slog.Logger, waiting func(error)) (*store.Store, error) {
	begin := time.Now()
	wctx, cancel := ctx, context.CancelFunc(func() {})
	limit := "for ever"
	if cfg.DBConnectTimeout > 0 {
		wctx, cancel = context.WithTimeout(ctx, cfg.DBConnectTimeout)
		limit = "up to " + cfg.DBConnectTimeout.String()
	}
	defer cancel()
	wait := backoff.NewExponentialBackOff()
	wait.InitialInterval, wait.MaxInterval = 200*time.Millisecond, 5*time.Second
	var (
		last     error // the last attempt's error, unless the limit cut that attempt short
		reminded time.Time
	)
	for attempt := 1; ; attempt++ {
		actx, cancelAttempt := context.WithTimeout(wctx, storeAttemptTimeout)
		st, err := store.Open(actx, cfg.DatabaseURL, store.MaxConns(cfg.DBMaxConns))
		cancelAttempt()
		switch {
		case err == nil:
			if attempt > 1 {
				log.Info("PostgreSQL answers: starting", slog.Int("attempts", attempt),
					slog.Duration("waited", time.Since(begin).Round(time.Millisecond)))
			}
			if migrate {
				if err := st.MigrateUp(ctx); err != nil {
					st.Close()
					return nil, err
				}
			}
			return st, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case !store.IsTransient(err):
			return nil, err
		case wctx.Err() == nil || last == nil:
			last = err
		}
		waited := time.Since(begin).Round(time.Second)
		giveUp := fmt.Errorf("gave up waiting for PostgreSQL after %s (DB_CONNECT_TIMEOUT) and %d attempts: %w", cfg.DBConnectTimeout, attempt, last)
		if wctx.Err() != nil {
			return nil, giveUp
		}
		if waiting != nil {
			waiting(fmt.Errorf("waiting for PostgreSQL for %s so far (attempt %d; DB_CONNECT_TIMEOUT: %s): %w", waited, attempt, limit, err))
		}
		switch {
		case attempt == 1:
			log.Warn("PostgreSQL does not answer: waiting for it, "+limit+" (DB_CONNECT_TIMEOUT), trying again with backoff; /readyz says why meanwhile",
				slog.Any("err", err))
			reminded = time.Now()
		case time.Since(reminded) >= storeReminder:
			log.Warn("still waiting for PostgreSQL", slog.Int("attempts", attempt), slog.Duration("waited", waited), slog.Any("err", err))
			reminded = time.Now()
		}
		select {
		case <-time.After(wait.NextBackOff()):
		case <-wctx.Done():
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, giveUp
		}
	}
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

// PrepareGroup gives the group, under KIP-848's protocol, the session
// timeout its members are configured with (CONSUMER_SESSION_TIMEOUT): there
// the broker decides it, and a member's own is not asked. A broker that
// refuses (Kafka keeps a group's between group.consumer.min.session.timeout.ms
// and group.consumer.max.session.timeout.ms, 45 s and 60 s unless set) is
// told in a warning, and the group keeps the broker's
// group.consumer.session.timeout.ms. The classic protocol needs nothing:
// each member sends its own.
func PrepareGroup(ctx context.Context, cl *kgo.Client, cfg config.Config, log *slog.Logger) {
	if cfg.GroupProtocol != config.GroupProtocolConsumer {
		return
	}
	if err := kafka.SetGroupSessionTimeout(ctx, cl, cfg.Group, cfg.SessionTimeout); err != nil {
		log.Warn("the group's session timeout is the broker's, not CONSUMER_SESSION_TIMEOUT: a crashed member's partitions wait that long "+
			"(on Kafka, lower group.consumer.min.session.timeout.ms on the brokers to allow it, or set group.consumer.session.timeout.ms)",
			slog.String("group", cfg.Group), slog.Duration("wanted", cfg.SessionTimeout), slog.Any("err", err))
	}
}

// ProducerClient connects a producer client and makes sure the topics
// exist, so that a fresh broker needs no set-up step. The client's own lines
// go to clientLog (a terminal view keeps them apart), its metrics to m unless
// it is nil. A cfg with a ProducerRate is a steady producer's
// (producer.Producer at that rate), which lingers itself
// (producer.Config.Linger: Linger): its client sends what it is handed at
// once. A client that publishes on demand passes a cfg with a rate of 0,
// and lingers PRODUCER_LINGER when that is a duration.
func ProducerClient(ctx context.Context, cfg config.Config, log, clientLog *slog.Logger, m *telemetry.Metrics) (*kgo.Client, error) {
	return producerClient(ctx, cfg, log, clientLog, m)
}

// Linger is PRODUCER_LINGER for a producer at cfg.ProducerRate, auto
// chosen from the rate (producer.LingerFor).
func Linger(cfg config.Config) time.Duration {
	if cfg.ProducerLinger == config.AutoLinger {
		return producer.LingerFor(cfg.ProducerRate)
	}
	return cfg.ProducerLinger
}

// TransactionalProducerClient is ProducerClient with a transactional id
// (producer.TransactionalOptions): its orders go into transactions that
// producer.Begin begins and Transaction.End ends.
func TransactionalProducerClient(ctx context.Context, cfg config.Config, id string, timeout time.Duration, log, clientLog *slog.Logger,
	m *telemetry.Metrics) (*kgo.Client, error) {
	return producerClient(ctx, cfg, log, clientLog, m, producer.TransactionalOptions(id, timeout)...)
}

func producerClient(ctx context.Context, cfg config.Config, log, clientLog *slog.Logger, m *telemetry.Metrics, extra ...kgo.Opt) (*kgo.Client, error) {
	linger := Linger(cfg)
	if cfg.ProducerRate > 0 {
		linger = 0
	}
	opts := append(kafka.ClientOpts(KafkaOptions(cfg, clientLog)), producer.Options(cfg.ProducerRetries, 30*time.Second, linger)...)
	opts = append(opts, extra...)
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
// group member named id. The Kafka clients' own lines go to clientLog. Its
// metrics go to m, the Kafka client's own with them; observe, when not nil,
// is told the member's events.
func NewConsumer(ctx context.Context, cfg config.Config, st consumer.Store, id string, log, clientLog *slog.Logger, m *telemetry.Metrics,
	observe func(consumer.Event)) (*consumer.Consumer, error) {
	base := kafka.ClientOpts(KafkaOptions(cfg, clientLog))
	probe, err := kgo.NewClient(base...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	err = PrepareTopics(ctx, probe, cfg, log)
	if err == nil {
		PrepareGroup(ctx, probe, cfg, log)
	}
	probe.Close()
	if err != nil {
		return nil, err
	}
	cc := ConsumerConfig(cfg, id)
	cc.Hooks, cc.Observe, cc.Metrics = []kgo.Hook{KafkaHook(m)}, observe, m
	return consumer.New(base, st, cc, log)
}

// shutdownTimeout is how long a member told to stop may take to finish the
// batch in hand: within the 10 s docker stop waits before it kills (an
// orchestrator's grace, 30 s in deploy/k8s, is longer).
const shutdownTimeout = 8 * time.Second

// ConsumerConfig is the group member named id as cfg configures it: every
// setting of the member's comes from cfg, none from a default of the
// consumer's (it has none), and the member is static (its id is Kafka's
// group.instance.id).
func ConsumerConfig(cfg config.Config, id string) consumer.Config {
	return consumer.Config{
		ID: id, Group: cfg.Group, Topic: cfg.Topic, DLQTopic: cfg.DLQTopic,
		BatchSize: cfg.BatchSize, Writers: cfg.Writers, DBRetries: cfg.DBRetries, StatsInterval: cfg.StatsInterval,
		SessionTimeout:  cfg.SessionTimeout,
		GroupProtocol:   cfg.GroupProtocol,
		FetchMaxWait:    cfg.FetchMaxWait,
		FetchMinBytes:   cfg.FetchMinBytes,
		ShutdownTimeout: shutdownTimeout,
		ClientID:        cfg.ClientID + "-" + id,
		InstanceID:      id,
	}
}

// KafkaHook adds the Kafka client's own metrics (connections, bytes,
// request latency, buffered records) to m's registry, labelled with the
// client id so that several clients in one process stay apart.
func KafkaHook(m *telemetry.Metrics) kgo.Hook {
	return kprom.NewMetrics("foodpipe", kprom.Subsystem("kafka"), kprom.Registry(m.Registry), kprom.WithClientLabel())
}

// NotifyStore is the notifier's store (package notify) on st, sending to
// cfg's mail server (SMTP_URL).
func NotifyStore(cfg config.Config, st *store.Store, m *telemetry.Metrics, log *slog.Logger) (*notify.Store, error) {
	server, err := mail.ParseURL(cfg.SMTPURL)
	if err != nil {
		return nil, err
	}
	return notify.New(st, server, m, log), nil
}
