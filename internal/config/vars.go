package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The variables, one handle each: code that names a variable (a flag, a
// child's setting) uses its handle, so that a misspelt name does not compile.
var (
	KafkaBrokers = &Var{"KAFKA_BROKERS", "127.0.0.1:9092", "Comma-separated Kafka bootstrap brokers (host:port).", func(c *Config, v string) error {
		bs, err := parseBrokers(v)
		c.Brokers = bs
		return err
	}, func(c Config) string { return strings.Join(c.Brokers, ",") }, Plain}
	KafkaTopic = &Var{"KAFKA_TOPIC", "food-orders", "Topic the orders are produced to and consumed from.", func(c *Config, v string) error {
		return setTopic(&c.Topic, v)
	}, func(c Config) string { return c.Topic }, Plain}
	KafkaDLQTopic = &Var{"KAFKA_DLQ_TOPIC", "food-orders.dlq", "Dead-letter topic for messages that fail validation.", func(c *Config, v string) error {
		return setTopic(&c.DLQTopic, v)
	}, func(c Config) string { return c.DLQTopic }, Plain}
	KafkaGroup = &Var{"KAFKA_GROUP", "order-processors", "Consumer group of the order consumers.", func(c *Config, v string) error {
		return setNonEmpty(&c.Group, v)
	}, func(c Config) string { return c.Group }, Plain}
	KafkaAnalyticsGroup = &Var{"KAFKA_ANALYTICS_GROUP", "order-analytics", "Consumer group of foodpipe analytics, which reads the same topic on its own.", func(c *Config, v string) error {
		return setNonEmpty(&c.AnalyticsGroup, v)
	}, func(c Config) string { return c.AnalyticsGroup }, Plain}
	KafkaNotifyGroup = &Var{"KAFKA_NOTIFY_GROUP", "order-notifications", "Consumer group of foodpipe notify, which emails each customer that their order was received.", func(c *Config, v string) error {
		return setNonEmpty(&c.NotifyGroup, v)
	}, func(c Config) string { return c.NotifyGroup }, Plain}
	SMTPURL = &Var{"SMTP_URL", "smtp://127.0.0.1:1025", "Mail server foodpipe notify sends to, as smtp://host:port (no authentication or TLS: a test server such as Mailpit).", func(c *Config, v string) error {
		return setURL(&c.SMTPURL, v, "smtp")
	}, func(c Config) string { return c.SMTPURL }, Plain}
	NotifyBatchSize = &Var{"NOTIFY_BATCH_SIZE", "50", "Most emails foodpipe notify sends before it records them with the offsets: a notifier killed between the two leaves at most this many in doubt per writer (CONSUMER_WRITERS), each sent again.", func(c *Config, v string) error {
		n, err := parseInt(v, 1, 100000)
		c.NotifyBatchSize = int(n)
		return err
	}, func(c Config) string { return strconv.Itoa(c.NotifyBatchSize) }, Plain}
	MailAPIURL = &Var{"MAIL_API_URL", "http://127.0.0.1:8025", "REST API of that mail server (Mailpit's): foodpipe notify inbox reads what arrived there, and foodpipe notify the duplicates it holds (foodpipe_notify_receiver_duplicates).", func(c *Config, v string) error {
		return setURL(&c.MailAPIURL, v, "http", "https")
	}, func(c Config) string { return c.MailAPIURL }, Plain}
	KafkaPartitions = &Var{"KAFKA_PARTITIONS", "3", "Partitions of the orders topic when foodpipe creates it.", func(c *Config, v string) error {
		n, err := parseInt(v, 1, 10000)
		c.Partitions = int32(n)
		return err
	}, func(c Config) string { return strconv.Itoa(int(c.Partitions)) }, Plain}
	KafkaReplicationFactor = &Var{"KAFKA_REPLICATION_FACTOR", "1", "Replication factor of the topics when foodpipe creates them (3 in production).", func(c *Config, v string) error {
		n, err := parseInt(v, 1, 32)
		c.ReplicationFactor = int16(n)
		return err
	}, func(c Config) string { return strconv.Itoa(int(c.ReplicationFactor)) }, Plain}
	KafkaRetention = &Var{"KAFKA_RETENTION", "7d", "How long the orders topic keeps messages (retention.ms); a Go duration or days, e.g. 168h or 7d.", func(c *Config, v string) error {
		d, err := ParseRetention(v)
		c.Retention = d
		return err
	}, func(c Config) string { return FormatRetention(c.Retention) }, Plain}
	KafkaClientID = &Var{"KAFKA_CLIENT_ID", "foodpipe", "Client id the Kafka brokers see in their logs and quotas.", func(c *Config, v string) error {
		return setNonEmpty(&c.ClientID, v)
	}, func(c Config) string { return c.ClientID }, Plain}
	KafkaTLS = &Var{"KAFKA_TLS", "false", "Connect to the brokers over TLS (Amazon MSK, Strimzi, Confluent Cloud).", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("must be true or false")
		}
		c.TLS = b
		return nil
	}, func(c Config) string { return strconv.FormatBool(c.TLS) }, Plain}
	KafkaTLSCAFile = &Var{"KAFKA_TLS_CA_FILE", "", "PEM file of the CA certificates the brokers' certificates must chain to; empty uses the system's (enough for MSK).", func(c *Config, v string) error {
		c.TLSCAFile, c.TLSCA = v, nil
		if v == "" {
			return nil
		}
		pem, err := os.ReadFile(v)
		if err != nil {
			return fmt.Errorf("cannot read the file: %w", errors.Unwrap(err))
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return errors.New("holds no PEM certificate")
		}
		c.TLSCA = pem
		return nil
	}, func(c Config) string { return c.TLSCAFile }, Plain}
	KafkaSASLMechanism = &Var{"KAFKA_SASL_MECHANISM", "none", "SASL authentication: none, PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM (AWS credentials from the SDK's default chain).", func(c *Config, v string) error {
		for _, m := range SASLMechanisms {
			if strings.EqualFold(v, m) {
				c.SASLMechanism = m
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(SASLMechanisms, ", "))
	}, func(c Config) string { return c.SASLMechanism }, Plain}
	KafkaSASLUsername = &Var{"KAFKA_SASL_USERNAME", "", "SASL user for PLAIN and SCRAM.", func(c *Config, v string) error {
		c.SASLUsername = v
		return nil
	}, func(c Config) string { return c.SASLUsername }, Plain}
	KafkaSASLPassword = &Var{"KAFKA_SASL_PASSWORD", "", "SASL password for PLAIN and SCRAM (a secret: never logged).", func(c *Config, v string) error {
		c.SASLPassword = v
		return nil
	}, func(c Config) string { return c.SASLPassword }, Secret}
	DatabaseURL = &Var{"DATABASE_URL", "postgres://postgres@127.0.0.1:5432/foodpipe?sslmode=disable", "PostgreSQL connection URL (a secret: never logged with its password).", func(c *Config, v string) error {
		if err := checkDatabaseURL(v); err != nil {
			return err
		}
		c.DatabaseURL = v
		return nil
	}, func(c Config) string { return c.DatabaseURL }, SecretInURL}
	DBMaxConns = &Var{"DB_MAX_CONNS", "4", "Most PostgreSQL connections one process opens.", func(c *Config, v string) error {
		n, err := parseInt(v, 1, 1000)
		c.DBMaxConns = int32(n)
		return err
	}, func(c Config) string { return strconv.Itoa(int(c.DBMaxConns)) }, Plain}
	DBConnectTimeout = &Var{"DB_CONNECT_TIMEOUT", "0s", "How long consume and analytics wait at start for PostgreSQL to answer, trying again with backoff, before they stop with an error; 0 waits for ever, as Kafka clients wait for their brokers: a stopped container is restarted anyway, and /readyz tells an orchestrator why the consumer is not ready yet.", func(c *Config, v string) error {
		return setDuration(&c.DBConnectTimeout, v, 0, 24*time.Hour, "0 (for ever) to 24h such as 2m")
	}, func(c Config) string { return c.DBConnectTimeout.String() }, Plain}
	DBMigrate = &Var{"DB_MIGRATE", "true", "Whether the consumer applies schema migrations at start.", func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("must be true or false")
		}
		c.Migrate = b
		return nil
	}, func(c Config) string { return strconv.FormatBool(c.Migrate) }, Plain}
	ProducerRate = &Var{"PRODUCER_RATE", "10", "Orders per second the producer generates; 0 means as fast as possible.", func(c *Config, v string) error {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || r > 10_000_000 || r != r {
			return errors.New("must be a number from 0 to 10000000")
		}
		c.ProducerRate = r
		return nil
	}, func(c Config) string { return strconv.FormatFloat(c.ProducerRate, 'g', -1, 64) }, Plain}
	ProducerRetries = &Var{"PRODUCER_RETRIES", "3", "Retries of a failed publish, with exponential backoff, before the producer gives up.", func(c *Config, v string) error {
		n, err := parseInt(v, 0, 100)
		c.ProducerRetries = int(n)
		return err
	}, func(c Config) string { return strconv.Itoa(c.ProducerRetries) }, Plain}
	ProducerLinger = &Var{"PRODUCER_LINGER", "auto", "How long an order may wait in the producer for others to go to Kafka with it: CPU against latency. auto chooses it from PRODUCER_RATE: about ten orders a request, at most 1s (1s at 10 orders/s and below, 100ms at 100/s, 20ms at 500/s), none from 1000/s, where the p99 target is 5ms, or at 0. Each request costs every process on its way about the same whatever it carries, so the pipeline then takes a fraction of the CPU at low rates, and every order waits up to the linger: foodpipe_e2e_latency_seconds, from created_at, counts the wait; foodpipe_delivery_latency_seconds, from the hand-over to Kafka (the 25ms target), does not. A producer at a steady rate makes the orders due within a linger together, each created at the moment it was due. 0 sends each order at once, for the least latency; a duration up to 1s is taken as it is.", func(c *Config, v string) error {
		if strings.EqualFold(v, "auto") {
			c.ProducerLinger = AutoLinger
			return nil
		}
		return setDuration(&c.ProducerLinger, v, 0, time.Second, "0 to 1s such as 5ms, or auto")
	}, func(c Config) string {
		if c.ProducerLinger == AutoLinger {
			return "auto"
		}
		return c.ProducerLinger.String()
	}, Plain}
	ConsumerBatchSize = &Var{"CONSUMER_BATCH_SIZE", "5000", "Most records the consumer writes to PostgreSQL in one transaction.", func(c *Config, v string) error {
		n, err := parseInt(v, 1, 100000)
		c.BatchSize = int(n)
		return err
	}, func(c Config) string { return strconv.Itoa(c.BatchSize) }, Plain}
	ConsumerWriters = &Var{"CONSUMER_WRITERS", "3", "Partitions one consumer writes to PostgreSQL at once, each batch on its own connection (at most DB_MAX_CONNS).", func(c *Config, v string) error {
		n, err := parseInt(v, 1, 64)
		c.Writers = int(n)
		return err
	}, func(c Config) string { return strconv.Itoa(c.Writers) }, Plain}
	ConsumerDBRetries = &Var{"CONSUMER_DB_RETRIES", "3", "Retries of a failed database write, with exponential backoff, before the circuit breaker opens.", func(c *Config, v string) error {
		n, err := parseInt(v, 0, 100)
		c.DBRetries = int(n)
		return err
	}, func(c Config) string { return strconv.Itoa(c.DBRetries) }, Plain}
	ConsumerSessionTimeout = &Var{"CONSUMER_SESSION_TIMEOUT", "10s", "How long the group waits for a silent consumer before giving its partitions to the others.", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > 5*time.Minute {
			return errors.New("must be a duration from 1s to 5m such as 10s")
		}
		c.SessionTimeout = d
		return nil
	}, func(c Config) string { return c.SessionTimeout.String() }, Plain}
	ConsumerGroupProtocol = &Var{"CONSUMER_GROUP_PROTOCOL", GroupProtocolClassic, "The consumer group protocol: classic (every member rejoins in rounds for a rebalance, and one of them assigns) or consumer (KIP-848, Kafka 4.0 and later: the broker assigns, member by member, at their heartbeats). With consumer the broker keeps the session timeout: members ask it for CONSUMER_SESSION_TIMEOUT.", func(c *Config, v string) error {
		for _, p := range GroupProtocols {
			if strings.EqualFold(v, p) {
				c.GroupProtocol = p
				return nil
			}
		}
		return fmt.Errorf("must be %s", strings.Join(GroupProtocols, " or "))
	}, func(c Config) string { return c.GroupProtocol }, Plain}
	ConsumerFetchMaxWait = &Var{"CONSUMER_FETCH_MAX_WAIT", "5s", "Longest a fetch waits at the broker for CONSUMER_FETCH_MIN_BYTES to arrive. With the default of one byte a fetch returns as soon as a message arrives, so a longer wait adds no latency: it only wakes an idle consumer and its broker less often.", func(c *Config, v string) error {
		return setDuration(&c.FetchMaxWait, v, time.Millisecond, 10*time.Second, "1ms to 10s such as 5s")
	}, func(c Config) string { return c.FetchMaxWait.String() }, Plain}
	ConsumerFetchMinBytes = &Var{"CONSUMER_FETCH_MIN_BYTES", "1", "Least a fetch gathers at the broker before it returns, up to CONSUMER_FETCH_MAX_WAIT (Kafka's fetch.min.bytes): latency against CPU on the consumer's side. 1 returns each fetch as soon as a message arrives. More lets orders gather into fewer fetches and fewer transactions, and every order may wait up to CONSUMER_FETCH_MAX_WAIT: lower that with it (an order is about 300 bytes).", func(c *Config, v string) error {
		n, err := parseInt(v, 1, 50<<20)
		c.FetchMinBytes = int32(n)
		return err
	}, func(c Config) string { return strconv.Itoa(int(c.FetchMinBytes)) }, Plain}
	StatsInterval = &Var{"STATS_INTERVAL", "5s", "How often producer and consumer log their counters.", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return errors.New("must be a positive duration such as 5s")
		}
		c.StatsInterval = d
		return nil
	}, func(c Config) string { return c.StatsInterval.String() }, Plain}
	MetricsAddr = &Var{"METRICS_ADDR", "", "host:port where produce and consume serve /metrics, /healthz and /readyz; empty turns the server off.", func(c *Config, v string) error {
		if v == "" {
			c.MetricsAddr = ""
			return nil
		}
		host, port, err := splitHostPort(v)
		if err != nil {
			return errors.New("must be host:port such as :9100 or 127.0.0.1:9100")
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || strings.ContainsAny(host, "/ ") {
			return errors.New("must be host:port such as :9100 or 127.0.0.1:9100")
		}
		c.MetricsAddr = v
		return nil
	}, func(c Config) string { return c.MetricsAddr }, Plain}
	MetricsAddrFile = &Var{"METRICS_ADDR_FILE", "", "A file where produce, consume and analytics write the address their metrics server listens on, and where foodpipe health reads it: with METRICS_ADDR's port 0, replicas that share a network (host networking) each take a free port and their health checks still find it. Empty: neither.", func(c *Config, v string) error {
		if strings.ContainsRune(v, 0) {
			return errors.New("must be a file path")
		}
		c.MetricsAddrFile = v
		return nil
	}, func(c Config) string { return c.MetricsAddrFile }, Plain}
	LogLevel = &Var{"LOG_LEVEL", "info", "debug, info, warn or error. Logs are JSON lines on stderr.", func(c *Config, v string) error {
		return c.LogLevel.UnmarshalText([]byte(v))
	}, func(c Config) string { return strings.ToLower(c.LogLevel.String()) }, Plain}
)

// Vars lists every variable foodpipe reads, in the order .env.example shows them.
var Vars = []*Var{
	KafkaBrokers,
	KafkaTopic,
	KafkaDLQTopic,
	KafkaGroup,
	KafkaAnalyticsGroup,
	KafkaNotifyGroup,
	KafkaPartitions,
	KafkaReplicationFactor,
	KafkaRetention,
	KafkaClientID,
	KafkaTLS,
	KafkaTLSCAFile,
	KafkaSASLMechanism,
	KafkaSASLUsername,
	KafkaSASLPassword,
	DatabaseURL,
	DBMaxConns,
	DBConnectTimeout,
	DBMigrate,
	ProducerRate,
	ProducerRetries,
	ProducerLinger,
	ConsumerBatchSize,
	ConsumerWriters,
	ConsumerDBRetries,
	ConsumerSessionTimeout,
	ConsumerGroupProtocol,
	ConsumerFetchMaxWait,
	ConsumerFetchMinBytes,
	StatsInterval,
	MetricsAddr,
	MetricsAddrFile,
	LogLevel,
	SMTPURL,
	NotifyBatchSize,
	MailAPIURL,
}

// SASLMechanisms are the accepted values of KAFKA_SASL_MECHANISM.
var SASLMechanisms = []string{"none", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM"}

// The accepted values of CONSUMER_GROUP_PROTOCOL, as Kafka's Java consumer
// spells its group.protocol.
const (
	// GroupProtocolClassic is the protocol of JoinGroup and SyncGroup: a
	// member the coordinator picks as leader assigns the partitions, and
	// every rebalance is a round all members take part in.
	GroupProtocolClassic = "classic"
	// GroupProtocolConsumer is KIP-848's (Kafka 4.0 and later): members
	// heartbeat their subscription, the broker computes the assignment and
	// hands each member its part, epoch by epoch.
	GroupProtocolConsumer = "consumer"
)

// GroupProtocols are the accepted values of CONSUMER_GROUP_PROTOCOL.
var GroupProtocols = []string{GroupProtocolClassic, GroupProtocolConsumer}

// setDuration parses a duration from lo to hi into d.
func setDuration(d *time.Duration, v string, lo, hi time.Duration, want string) error {
	x, err := time.ParseDuration(v)
	if err != nil || x < lo || x > hi {
		return errors.New("must be a duration from " + want)
	}
	*d = x
	return nil
}
