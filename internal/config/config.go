// Package config holds foodpipe's one configuration struct and its loader.
//
// Values come from defaults, then a .env file when present, then the process
// environment, then command-line flags: each later source overrides the one
// before. Every variable is declared once, in Vars, so that the loader, the
// .env.example file and the README table cannot drift apart (a test checks the
// first two agree). A bad value stops the program with an error naming the
// variable and saying why.
//
// This package is the one place for a setting's default (Var.Default) and
// for every check across settings (Config.Validate), as franz-go keeps them
// in defaultCfg and validate. The packages a Config is handed to (consumer,
// producer, ...) take its values as given and refuse a value left out rather
// than invent a default of their own. Code names a variable by its handle
// (ConsumerBatchSize, not "CONSUMER_BATCH_SIZE"), so that a misspelt name does
// not compile, and a child process is given its configuration by Environ.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"

	"foodpipe/internal/secret"
)

// Config is everything foodpipe can be told. Subcommands read the parts they need.
type Config struct {
	// Kafka.
	Brokers           []string
	Topic             string
	DLQTopic          string
	Group             string
	AnalyticsGroup    string
	NotifyGroup       string
	Partitions        int32
	ReplicationFactor int16
	Retention         time.Duration
	ClientID          string

	// Kafka security. TLSCA holds the PEM certificates read from TLSCAFile.
	TLS           bool
	TLSCAFile     string
	TLSCA         []byte
	SASLMechanism string
	SASLUsername  string
	SASLPassword  string

	// PostgreSQL.
	DatabaseURL string
	DBMaxConns  int32
	// DBConnectTimeout is how long a consumer waits at start for
	// PostgreSQL to answer; 0 waits for ever.
	DBConnectTimeout time.Duration
	Migrate          bool

	// Producer.
	ProducerRate    float64
	ProducerRetries int
	// ProducerLinger is how long a batch waits for more orders before it is
	// sent; AutoLinger leaves the choice to the rate (producer.LingerFor).
	ProducerLinger time.Duration
	// FetchMaxWait is how long a fetch waits at the broker for
	// FetchMinBytes.
	FetchMaxWait time.Duration
	// FetchMinBytes is the least a fetch gathers before the broker answers
	// it, unless FetchMaxWait passes first.
	FetchMinBytes int32

	// Consumer.
	BatchSize int
	// Writers is how many partitions' batches one consumer writes at once.
	Writers   int
	DBRetries int
	// SessionTimeout is how long the group coordinator waits for a
	// heartbeat before it declares a consumer dead and rebalances.
	SessionTimeout time.Duration
	// GroupProtocol is the consumer group protocol the members speak:
	// GroupProtocolClassic or GroupProtocolConsumer (KIP-848).
	GroupProtocol string
	StatsInterval time.Duration

	// Observability.
	MetricsAddr string
	// MetricsAddrFile is where the metrics server writes the address it
	// listens on, and where foodpipe health reads it ("" for neither).
	MetricsAddrFile string

	// Logging.
	LogLevel slog.Level

	// Notifications: the mail server foodpipe notify sends to, and its API.
	SMTPURL         string
	NotifyBatchSize int
	MailAPIURL      string
}

// A Var is one environment variable, declared once: its name, default and
// meaning, how it is applied to a Config and read back from one, and whether
// it is secret. The loader, the start-up log line, `foodpipe config`, the
// check of .env.example and the README table all come from Vars.
type Var struct {
	Name    string
	Default string
	Help    string
	set     func(c *Config, v string) error
	get     func(c Config) string
	Secrecy Secrecy
}

// AutoLinger is ProducerLinger when PRODUCER_LINGER is auto: the producer's
// client chooses the linger from the rate it produces at.
const AutoLinger time.Duration = -1

// Secrecy says how a variable's value is shown.
type Secrecy uint8

const (
	Plain       Secrecy = iota // shown as it is
	Secret                     // never shown: replaced whole
	SecretInURL                // a connection string: shown without its passwords
)

// Masked returns v's value val fit to print or log.
func (v Var) Masked(val string) string {
	switch v.Secrecy {
	case Secret:
		if val == "" {
			return ""
		}
		return secret.Mask
	case SecretInURL:
		return secret.RedactURL(val)
	}
	return val
}

// Value is v's value in c, as a variable would spell it.
func (v Var) Value(c Config) string { return v.get(c) }

// Default returns the configuration with every variable at its default.
func Default() Config {
	c, err := Load(func(string) (string, bool) { return "", false })
	if err != nil {
		panic("config: bad default: " + err.Error())
	}
	return c
}

// Load builds a Config from defaults and the given lookup (os.LookupEnv in the
// program). A variable that is set but empty is an error when it has a
// default: a deploy whose secret came out empty must stop, not quietly talk
// to 127.0.0.1. Variables whose default is empty (METRICS_ADDR, the SASL
// user) may be set empty.
func Load(lookup func(string) (string, bool)) (Config, error) {
	var c Config
	var errs []error
	for _, v := range Vars {
		val, ok := lookup(v.Name)
		if ok && strings.TrimSpace(val) == "" && v.Default != "" {
			errs = append(errs, emptyError(v))
			continue
		}
		if !ok {
			val = v.Default
		}
		if err := v.set(&c, strings.TrimSpace(val)); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", v.Name, v.Masked(val), err))
		}
	}
	return c, errors.Join(errs...)
}

// WithDotEnv returns a lookup that falls back to the variables of the .env
// file at path when the environment does not set them (the environment wins,
// as with every dotenv tool). A missing file is not an error.
func WithDotEnv(path string, lookup func(string) (string, bool)) (func(string) (string, bool), error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return lookup, nil
	} else if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	vals, err := godotenv.Read(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return func(k string) (string, bool) {
		if v, ok := lookup(k); ok {
			return v, ok
		}
		v, ok := vals[k]
		return v, ok
	}, nil
}

func emptyError(v *Var) error {
	return fmt.Errorf("%s is set but empty: give it a value, or unset it to use the default %q", v.Name, v.Masked(v.Default))
}

// Set applies value to c as the variable would (flags that override a
// variable go through it): the same parsing and checks, an error naming it.
func (v *Var) Set(c *Config, value string) error {
	if strings.TrimSpace(value) == "" && v.Default != "" {
		return emptyError(v)
	}
	if err := v.set(c, strings.TrimSpace(value)); err != nil {
		return fmt.Errorf("%s: %w", v.Name, err)
	}
	return nil
}

// Environ is c as the environment of a foodpipe child process: NAME=value
// for every variable, in the order of Vars, each value as it reads back, so
// that a child loads the same Config (secrets included: it needs them; never
// log the result). Change what a child gets by changing c's fields first.
func Environ(c Config) []string {
	env := make([]string, len(Vars))
	for i, v := range Vars {
		env[i] = v.Env(v.get(c))
	}
	return env
}

// Env is NAME=value for v: an environment entry with the name spelt as
// declared. Prefer Environ with a Config whose field is set; Env is for an
// entry on its own (a test's, a command line's).
func (v *Var) Env(value string) string { return v.Name + "=" + value }

// Validate checks what single variables cannot: how they fit together. Every
// such check is here, none in the packages the Config is handed to.
func (c Config) Validate() error {
	var errs []error
	if c.Topic == c.DLQTopic {
		errs = append(errs, errors.New("KAFKA_TOPIC and KAFKA_DLQ_TOPIC must differ: dead letters would be consumed again"))
	}
	if c.Writers > int(c.DBMaxConns) {
		errs = append(errs, fmt.Errorf("CONSUMER_WRITERS=%d needs as many connections, but DB_MAX_CONNS=%d: raise DB_MAX_CONNS or lower CONSUMER_WRITERS", c.Writers, c.DBMaxConns))
	}
	if c.TLSCAFile != "" && !c.TLS {
		errs = append(errs, errors.New("KAFKA_TLS_CA_FILE is set but KAFKA_TLS is false: set KAFKA_TLS=true to use it"))
	}
	switch c.SASLMechanism {
	case "none", "":
		if c.SASLUsername != "" || c.SASLPassword != "" {
			errs = append(errs, errors.New("KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set but KAFKA_SASL_MECHANISM is none: set the mechanism the brokers use"))
		}
	case "AWS_MSK_IAM":
		if c.SASLUsername != "" || c.SASLPassword != "" {
			errs = append(errs, errors.New("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are not used with KAFKA_SASL_MECHANISM=AWS_MSK_IAM (credentials come from the AWS default chain): unset them"))
		}
		if !c.TLS {
			errs = append(errs, errors.New("KAFKA_SASL_MECHANISM=AWS_MSK_IAM needs KAFKA_TLS=true: MSK serves IAM authentication only over TLS (port 9098)"))
		}
	default:
		if c.SASLUsername == "" {
			errs = append(errs, fmt.Errorf("KAFKA_SASL_USERNAME must be set when KAFKA_SASL_MECHANISM=%s", c.SASLMechanism))
		}
		if c.SASLPassword == "" {
			errs = append(errs, fmt.Errorf("KAFKA_SASL_PASSWORD must be set when KAFKA_SASL_MECHANISM=%s", c.SASLMechanism))
		}
	}
	return errors.Join(errs...)
}

// LogValue prints the configuration for the start-up log line: every
// variable, by its name in lower case, secrets masked.
func (c Config) LogValue() slog.Value {
	attrs := make([]slog.Attr, len(Vars))
	for i, v := range Vars {
		attrs[i] = slog.String(strings.ToLower(v.Name), v.Masked(v.get(c)))
	}
	return slog.GroupValue(attrs...)
}

// ParseRetention accepts a Go duration (168h) or whole days (7d).
func ParseRetention(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 36500 {
			return 0, errors.New("must be a positive number of days such as 7d, or a duration such as 168h")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Minute {
		return 0, errors.New("must be a duration of at least 1m such as 168h, or days such as 7d")
	}
	return d, nil
}

// FormatRetention spells a retention as KAFKA_RETENTION takes it: whole days
// as 7d, anything else as a Go duration.
func FormatRetention(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

func parseBrokers(v string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(v, ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		host, port, err := splitHostPort(b)
		if err != nil || host == "" {
			return nil, fmt.Errorf("broker %q must be host:port", b)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("broker %q has a bad port", b)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("must list at least one host:port")
	}
	return out, nil
}

func splitHostPort(b string) (string, string, error) {
	i := strings.LastIndexByte(b, ':')
	if i < 0 {
		return "", "", errors.New("no port")
	}
	return strings.Trim(b[:i], "[]"), b[i+1:], nil
}

func setTopic(dst *string, v string) error {
	if v == "" || len(v) > 249 || v == "." || v == ".." {
		return errors.New("must be 1 to 249 characters")
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("may hold only letters, digits, '.', '_' and '-', not %q", r)
		}
	}
	*dst = v
	return nil
}

// setURL takes v if it is a URL of one of schemes with a host and a port
// and nothing else (no user, path or query).
func setURL(dst *string, v string, schemes ...string) error {
	u, err := url.Parse(v)
	if err != nil || !slices.Contains(schemes, u.Scheme) || u.Hostname() == "" || u.Port() == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return fmt.Errorf("must be %s://host:port", strings.Join(schemes, "|"))
	}
	*dst = v
	return nil
}

func setNonEmpty(dst *string, v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	*dst = v
	return nil
}

func parseInt(v string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("must be a whole number from %d to %d", lo, hi)
	}
	return n, nil
}

func checkDatabaseURL(v string) error {
	u, err := url.Parse(v)
	if err != nil {
		return errors.New("must be a URL such as postgres://user:pass@host:5432/db")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return errors.New("must start with postgres:// or postgresql://")
	}
	if u.Hostname() == "" && u.Query().Get("host") == "" {
		return errors.New("must name a host, as in postgres://user@host:5432/foodpipe")
	}
	if strings.Trim(u.Path, "/") == "" && u.Query().Get("dbname") == "" {
		return errors.New("must name a database, as in postgres://user@host:5432/foodpipe")
	}
	return nil
}
