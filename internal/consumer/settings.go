package consumer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/telemetry"
)

// Config says how the consumer runs. Its settings have no defaults here:
// they come from package config, which holds every default, and New refuses
// one left out (see check) rather than run on a value of its own.
type Config struct {
	ID        string // this member's name in logs and stats
	Group     string
	Topic     string
	DLQTopic  string
	BatchSize int
	// SessionTimeout is how soon a crashed member's partitions move to the
	// others.
	SessionTimeout time.Duration
	// GroupProtocol is the group protocol the member speaks:
	// config.GroupProtocolClassic, or config.GroupProtocolConsumer for
	// KIP-848, where the broker assigns the partitions and the session
	// timeout is the group's on the broker, not SessionTimeout.
	GroupProtocol string
	// FetchMaxWait is how long a fetch waits at the broker for
	// FetchMinBytes.
	FetchMaxWait time.Duration
	// FetchMinBytes is the least a fetch gathers before the broker answers
	// it (Kafka's fetch.min.bytes): 1 answers as soon as a record arrives;
	// more lets records gather, each waiting up to FetchMaxWait.
	FetchMinBytes int32
	// DBRetries is how many times a failed write is retried, with
	// exponential backoff, before the circuit breaker opens; 0 opens it at
	// the first failure.
	DBRetries int
	// StatsInterval is how often counters are logged; 0 means never.
	StatsInterval time.Duration
	// ShutdownTimeout bounds finishing the batch in hand after a stop signal.
	ShutdownTimeout time.Duration
	// Writers is how many partitions' batches are written at once, each
	// on its own database connection.
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

// check refuses a Config with a setting left out or out of range, naming
// each. A zero is a mistake in the wiring, not a wish for a default: a
// default written here as well as in package config is how the two came to
// differ (a batch of 1000 here against 5000 there, a session of 45 s
// against 10 s).
func (cfg Config) check() error {
	var errs []error
	need := func(ok bool, field, want string) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s must be %s", field, want))
		}
	}
	need(cfg.Group != "", "Group", "set")
	need(cfg.Topic != "", "Topic", "set")
	need(cfg.DLQTopic != "", "DLQTopic", "set")
	need(cfg.BatchSize > 0, "BatchSize", "at least 1")
	need(cfg.Writers > 0, "Writers", "at least 1")
	need(cfg.DBRetries >= 0, "DBRetries", "0 or more")
	need(cfg.SessionTimeout > 0, "SessionTimeout", "positive")
	need(slices.Contains(config.GroupProtocols, cfg.GroupProtocol), "GroupProtocol", strings.Join(config.GroupProtocols, " or "))
	need(cfg.FetchMaxWait > 0, "FetchMaxWait", "positive")
	need(cfg.FetchMinBytes > 0, "FetchMinBytes", "at least 1")
	need(cfg.ShutdownTimeout > 0, "ShutdownTimeout", "positive")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// writeTimeout bounds one attempt at writing a batch.
