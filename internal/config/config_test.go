package config

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaultsMatchTheIssue(t *testing.T) {
	c := Default()
	if got := strings.Join(c.Brokers, ","); got != "127.0.0.1:9092" {
		t.Errorf("brokers = %q", got)
	}
	if c.Topic != "food-orders" || c.DLQTopic != "food-orders.dlq" || c.Group != "order-processors" {
		t.Errorf("names = %q %q %q", c.Topic, c.DLQTopic, c.Group)
	}
	if c.Partitions != 3 || c.ReplicationFactor != 1 || c.Retention != 7*24*time.Hour {
		t.Errorf("topic settings = %d %d %v", c.Partitions, c.ReplicationFactor, c.Retention)
	}
	if c.ProducerRate != 10 || c.LogLevel.String() != "INFO" || !c.Migrate {
		t.Errorf("rate %v level %v migrate %v", c.ProducerRate, c.LogLevel, c.Migrate)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		env     func(string) (string, bool)
		wantErr string // substring; "" means success
		check   func(t *testing.T, c Config)
	}{
		{"several brokers are split on commas", env("KAFKA_BROKERS", "a:9092, b:9093"), "", func(t *testing.T, c Config) {
			if len(c.Brokers) != 2 || c.Brokers[1] != "b:9093" {
				t.Errorf("brokers = %v", c.Brokers)
			}
		}},
		{"retention in days becomes hours", env("KAFKA_RETENTION", "3d"), "", func(t *testing.T, c Config) {
			if c.Retention != 72*time.Hour {
				t.Errorf("retention = %v", c.Retention)
			}
		}},
		{"retention as a Go duration is accepted", env("KAFKA_RETENTION", "90m"), "", nil},
		{"an empty topic is refused, naming the variable", env("KAFKA_TOPIC", ""), "KAFKA_TOPIC is set but empty", nil},
		{"empty brokers are refused", env("KAFKA_BROKERS", " "), "KAFKA_BROKERS is set but empty", nil},
		{"an empty group is refused", env("KAFKA_GROUP", ""), "KAFKA_GROUP is set but empty", nil},
		{"an empty client id is refused", env("KAFKA_CLIENT_ID", ""), "KAFKA_CLIENT_ID is set but empty", nil},
		{"an empty database URL is refused", env("DATABASE_URL", ""), "DATABASE_URL is set but empty", nil},
		{"an empty metrics address turns the server off", env("METRICS_ADDR", ""), "", func(t *testing.T, c Config) {
			if c.MetricsAddr != "" {
				t.Errorf("metrics addr = %q", c.MetricsAddr)
			}
		}},
		{"a database URL without a host is refused as typed", env("DATABASE_URL", "postgres://"), `DATABASE_URL="postgres://": must name a host`, nil},
		{"a database URL without a database is refused", env("DATABASE_URL", "postgres://u@db:5432/"), "must name a database", nil},
		{"a database named in the query is accepted", env("DATABASE_URL", "postgres://u@db:5432?dbname=orders"), "", nil},
		{"rate zero means as fast as possible", env("PRODUCER_RATE", "0"), "", nil},
		{"a broker without a port is refused", env("KAFKA_BROKERS", "localhost"), "KAFKA_BROKERS", nil},
		{"a port out of range is refused", env("KAFKA_BROKERS", "h:70000"), "bad port", nil},
		{"zero partitions are refused", env("KAFKA_PARTITIONS", "0"), "KAFKA_PARTITIONS", nil},
		{"a non-numeric rate is refused", env("PRODUCER_RATE", "fast"), "PRODUCER_RATE", nil},
		{"a negative rate is refused", env("PRODUCER_RATE", "-1"), "PRODUCER_RATE", nil},
		{"NaN is not a rate", env("PRODUCER_RATE", "NaN"), "PRODUCER_RATE", nil},
		{"an unknown log level is refused", env("LOG_LEVEL", "loud"), "LOG_LEVEL", nil},
		{"a topic with a slash is refused", env("KAFKA_TOPIC", "food/orders"), "KAFKA_TOPIC", nil},
		{"retention of zero days is refused", env("KAFKA_RETENTION", "0d"), "KAFKA_RETENTION", nil},
		{"retention under a minute is refused", env("KAFKA_RETENTION", "5s"), "KAFKA_RETENTION", nil},
		{"a database URL of another scheme is refused", env("DATABASE_URL", "mysql://x@h/db"), "DATABASE_URL", nil},
		{"DB_MIGRATE must be a boolean", env("DB_MIGRATE", "maybe"), "DB_MIGRATE", nil},
		{"a start-up wait for the database is a duration", env("DB_CONNECT_TIMEOUT", "2m"), "", func(t *testing.T, c Config) {
			if c.DBConnectTimeout != 2*time.Minute {
				t.Errorf("DB connect timeout = %v", c.DBConnectTimeout)
			}
		}},
		{"a start-up wait that is not a duration is refused, saying what would do", env("DB_CONNECT_TIMEOUT", "soon"), `DB_CONNECT_TIMEOUT="soon": must be a duration from 0 (for ever)`, nil},
		{"a negative start-up wait is refused", env("DB_CONNECT_TIMEOUT", "-1s"), "DB_CONNECT_TIMEOUT", nil},
		{"STATS_INTERVAL must be positive", env("STATS_INTERVAL", "-1s"), "STATS_INTERVAL", nil},
		{"a metrics address with only a port listens on every interface", env("METRICS_ADDR", ":9100"), "", func(t *testing.T, c Config) {
			if c.MetricsAddr != ":9100" {
				t.Errorf("metrics addr = %q", c.MetricsAddr)
			}
		}},
		{"the consumer group protocol of KIP-848 is accepted in any case", env("CONSUMER_GROUP_PROTOCOL", "Consumer"), "", func(t *testing.T, c Config) {
			if c.GroupProtocol != GroupProtocolConsumer {
				t.Errorf("group protocol = %q", c.GroupProtocol)
			}
		}},
		{"an unknown group protocol is refused, saying which are known", env("CONSUMER_GROUP_PROTOCOL", "eager"), `CONSUMER_GROUP_PROTOCOL="eager": must be classic or consumer`, nil},
		{"a metrics address without a port is refused", env("METRICS_ADDR", "localhost"), "METRICS_ADDR", nil},
		{"the linger is left to the rate unless set", env(), "", func(t *testing.T, c Config) {
			if c.ProducerLinger != AutoLinger {
				t.Errorf("linger = %v, want AutoLinger", c.ProducerLinger)
			}
		}},
		{"a linger of 0 sends each order at once", env("PRODUCER_LINGER", "0"), "", func(t *testing.T, c Config) {
			if c.ProducerLinger != 0 {
				t.Errorf("linger = %v, want 0", c.ProducerLinger)
			}
		}},
		{"a linger set as a duration is taken as it is", env("PRODUCER_LINGER", "20ms"), "", func(t *testing.T, c Config) {
			if c.ProducerLinger != 20*time.Millisecond {
				t.Errorf("linger = %v", c.ProducerLinger)
			}
		}},
		{"a negative linger is refused, saying what would do", env("PRODUCER_LINGER", "-1ns"), `PRODUCER_LINGER="-1ns": must be a duration from 0 to 1s such as 5ms, or auto`, nil},
		{"auto is accepted in any case", env("PRODUCER_LINGER", "Auto"), "", func(t *testing.T, c Config) {
			if c.ProducerLinger != AutoLinger {
				t.Errorf("linger = %v, want AutoLinger", c.ProducerLinger)
			}
		}},
		{"a linger that is neither a duration nor auto is refused", env("PRODUCER_LINGER", "soon"), "PRODUCER_LINGER", nil},
		{"every bad variable is named at once", env("KAFKA_PARTITIONS", "x", "LOG_LEVEL", "y"), "LOG_LEVEL", func(t *testing.T, c Config) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.env)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tt.check != nil {
					tt.check(t, c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestTheDatabasePasswordNeverAppearsInErrorsOrLogs(t *testing.T) {
	_, err := Load(env("DATABASE_URL", "ftp://user:hunter2@host/db"))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v must exist and hide the password", err)
	}
	c, err := Load(env("DATABASE_URL", "postgres://user:hunter2@host/db"))
	if err != nil {
		t.Fatal(err)
	}
	if s := c.LogValue().String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "user:xxxxx@host") {
		t.Errorf("log value %q must mask the password", s)
	}
}

func TestMoreWritersThanConnectionsAreRefused(t *testing.T) {
	c, err := Load(env("CONSUMER_WRITERS", "5", "DB_MAX_CONNS", "4"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "CONSUMER_WRITERS=5 needs as many connections") {
		t.Fatalf("Validate = %v", err)
	}
}

func TestKafkaSecuritySettings(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte(testCAPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     func(string) (string, bool)
		wantErr string // substring of the Load or Validate error; "" means valid
	}{
		{"no security is the default", env(), ""},
		{"TLS with the system's CAs", env("KAFKA_TLS", "true"), ""},
		{"TLS with a CA file", env("KAFKA_TLS", "true", "KAFKA_TLS_CA_FILE", ca), ""},
		{"SCRAM with user and password", env("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", "KAFKA_SASL_USERNAME", "u", "KAFKA_SASL_PASSWORD", "p"), ""},
		{"the mechanism is case-insensitive", env("KAFKA_SASL_MECHANISM", "plain", "KAFKA_SASL_USERNAME", "u", "KAFKA_SASL_PASSWORD", "p"), ""},
		{"MSK IAM over TLS", env("KAFKA_SASL_MECHANISM", "AWS_MSK_IAM", "KAFKA_TLS", "true"), ""},
		{"KAFKA_TLS must be a boolean", env("KAFKA_TLS", "yes please"), "KAFKA_TLS"},
		{"a missing CA file is named", env("KAFKA_TLS", "true", "KAFKA_TLS_CA_FILE", filepath.Join(dir, "missing.pem")), "KAFKA_TLS_CA_FILE"},
		{"a CA file without certificates is refused", env("KAFKA_TLS", "true", "KAFKA_TLS_CA_FILE", notPEM), "holds no PEM certificate"},
		{"a CA file without TLS is refused", env("KAFKA_TLS_CA_FILE", ca), "KAFKA_TLS is false"},
		{"an unknown mechanism is refused", env("KAFKA_SASL_MECHANISM", "GSSAPI"), "KAFKA_SASL_MECHANISM"},
		{"SCRAM without a user is refused", env("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256", "KAFKA_SASL_PASSWORD", "p"), "KAFKA_SASL_USERNAME must be set"},
		{"PLAIN without a password is refused", env("KAFKA_SASL_MECHANISM", "PLAIN", "KAFKA_SASL_USERNAME", "u"), "KAFKA_SASL_PASSWORD must be set"},
		{"credentials without a mechanism are refused", env("KAFKA_SASL_USERNAME", "u"), "KAFKA_SASL_MECHANISM is none"},
		{"MSK IAM without TLS is refused", env("KAFKA_SASL_MECHANISM", "AWS_MSK_IAM"), "needs KAFKA_TLS=true"},
		{"MSK IAM with a user is refused", env("KAFKA_SASL_MECHANISM", "AWS_MSK_IAM", "KAFKA_TLS", "true", "KAFKA_SASL_USERNAME", "u"), "not used with KAFKA_SASL_MECHANISM=AWS_MSK_IAM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.env)
			if err == nil {
				err = c.Validate()
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
	c, err := Load(env("KAFKA_TLS", "true", "KAFKA_TLS_CA_FILE", ca, "KAFKA_SASL_MECHANISM", "scram-sha-512"))
	if err != nil {
		t.Fatal(err)
	}
	if c.SASLMechanism != "SCRAM-SHA-512" || string(c.TLSCA) != testCAPEM {
		t.Errorf("mechanism %q, CA %d bytes", c.SASLMechanism, len(c.TLSCA))
	}
}

func TestTheSASLPasswordNeverAppearsInLogsOrPrintouts(t *testing.T) {
	c, err := Load(env("KAFKA_SASL_MECHANISM", "PLAIN", "KAFKA_SASL_USERNAME", "orders", "KAFKA_SASL_PASSWORD", "hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	if s := c.LogValue().String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "orders") {
		t.Errorf("log value %q must show the user and mask the password", s)
	}
	if got := KafkaSASLPassword.Masked("hunter2"); got != "xxxxx" {
		t.Errorf("Mask = %q", got)
	}
	if got := KafkaSASLPassword.Masked(""); got != "" {
		t.Errorf("an unset password must print empty, not %q", got)
	}
}

// testCAPEM is a throwaway self-signed CA certificate; only its form matters here.
const testCAPEM = `-----BEGIN CERTIFICATE-----
MIIBizCCATGgAwIBAgIUIKhs0k1vodzN0hnjJ+hjyW96BDEwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQZm9vZHBpcGUgdGVzdCBDQTAeFw0yNjExMjUwNTU0NDNaFw0z
NjExMjIwNTU0NDNaMBsxGTAXBgNVBAMMEGZvb2RwaXBlIHRlc3QgQ0EwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAARo9uwjmc/juVp/UPL1SYlFfIYpVhryxvT1X8Es
VRcVFlNGO+UUzcmJrllIQsnvPsq1b7Prk/CBME3ItQRH+/KCo1MwUTAdBgNVHQ4E
FgQUpHW7Q3/pUUf9RVXz/9hG9R4xPMUwHwYDVR0jBBgwFoAUpHW7Q3/pUUf9RVXz
/9hG9R4xPMUwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAzcQo
KS3iaskziAOKMYqeJVebiH5Ik1E0dHpSUltqxocCIFJGDaqPjMm+dP0q5p/l0kxp
MKoYS4MaPqyr4y+5rpgp
-----END CERTIFICATE-----
`

func TestValidateRefusesTheDeadLetterTopicAsTheMainTopic(t *testing.T) {
	c, err := Load(env("KAFKA_TOPIC", "t", "KAFKA_DLQ_TOPIC", "t"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil {
		t.Fatal("want an error")
	}
}

func TestSetAppliesOneVariableAndNamesItInErrors(t *testing.T) {
	c := Default()
	if err := ProducerRate.Set(&c, "25"); err != nil || c.ProducerRate != 25 {
		t.Fatalf("rate %v err %v", c.ProducerRate, err)
	}
	if err := ProducerRate.Set(&c, "x"); err == nil || !strings.Contains(err.Error(), "PRODUCER_RATE") {
		t.Fatalf("err = %v", err)
	}
	if err := KafkaTopic.Set(&c, " "); err == nil || !strings.Contains(err.Error(), "KAFKA_TOPIC is set but empty") {
		t.Fatalf("an empty topic: err = %v", err)
	}
}

func TestDotEnvFillsInWhatTheEnvironmentLeavesUnset(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte("# comment\nKAFKA_TOPIC=from-file\nKAFKA_GROUP=\"file-group\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lookup, err := WithDotEnv(path, env("KAFKA_GROUP", "from-env"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.Topic != "from-file" || c.Group != "from-env" {
		t.Errorf("topic %q group %q", c.Topic, c.Group)
	}
	if _, err := WithDotEnv(filepath.Join(t.TempDir(), "missing"), env()); err != nil {
		t.Errorf("a missing .env file must not be an error: %v", err)
	}
	bad := filepath.Join(t.TempDir(), ".env")
	os.WriteFile(bad, []byte("A='unterminated\n"), 0o600)
	if _, err := WithDotEnv(bad, env()); err == nil {
		t.Error("a malformed .env must be an error")
	}
}

// The .env.example at the repository root lists exactly the variables
// foodpipe reads, with their defaults.
func TestEnvExampleListsEveryVariableWithItsDefault(t *testing.T) {
	f, err := os.Open("../../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	if len(got) != len(Vars) {
		t.Errorf(".env.example has %d variables, foodpipe reads %d", len(got), len(Vars))
	}
	for _, v := range Vars {
		if d, ok := got[v.Name]; !ok {
			t.Errorf(".env.example lacks %s", v.Name)
		} else if d != v.Default {
			t.Errorf(".env.example: %s=%s, default is %s", v.Name, d, v.Default)
		}
	}
}

func TestTheDatabaseURLIsMaskedInEveryForm(t *testing.T) {
	db := DatabaseURL
	for _, s := range []string{
		"postgres://u:hunter2@h/db",
		"postgres://u@h/db?password=hunter2&sslmode=disable",
		"host=h user=u password=hunter2 dbname=x",
		"host=h password='hunter2 with space' dbname=x",
	} {
		if got := db.Masked(s); strings.Contains(got, "hunter2") {
			t.Errorf("Masked(%q) = %q", s, got)
		}
	}
}

// A .env that exists but cannot be read is an error, not an absent file: a
// deploy would otherwise run on defaults without a word.
func TestAnUnreadableDotEnvIsAnError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A path through a regular file cannot be read (ENOTDIR), yet it is not missing.
	if _, err := WithDotEnv(filepath.Join(file, ".env"), os.LookupEnv); err == nil {
		t.Error("no error for a .env that cannot be read")
	}
	if _, err := WithDotEnv(filepath.Join(t.TempDir(), ".env"), os.LookupEnv); err != nil {
		t.Errorf("a missing .env: %v", err)
	}
}

// Each variable reads back what it was set to, so that the log line and
// `foodpipe config` show the configuration in effect.
func TestEveryVariableReadsBackAsItWasSet(t *testing.T) {
	def := Default()
	for _, v := range Vars {
		again, err := Load(env(v.Name, v.Value(def)))
		if err != nil {
			t.Errorf("%s=%q does not load: %v", v.Name, v.Value(def), err)
			continue
		}
		if !reflect.DeepEqual(again, def) {
			t.Errorf("%s: the default %q reads back as %q and loads differently", v.Name, v.Default, v.Value(def))
		}
	}
}

// The start-up log line has every variable, and no secret.
func TestLogValueHasEveryVariableAndNoSecret(t *testing.T) {
	c, err := Load(env("DATABASE_URL", "postgres://bob:hunter2@db:5432/orders", "KAFKA_SASL_MECHANISM", "PLAIN",
		"KAFKA_SASL_USERNAME", "bob", "KAFKA_SASL_PASSWORD", "hunter2"))
	if err != nil {
		t.Fatal(err)
	}
	attrs := c.LogValue().Group()
	if len(attrs) != len(Vars) {
		t.Errorf("%d attributes for %d variables", len(attrs), len(Vars))
	}
	for i, a := range attrs {
		if want := strings.ToLower(Vars[i].Name); a.Key != want {
			t.Errorf("attribute %d is %q, want %q", i, a.Key, want)
		}
		if strings.Contains(a.Value.String(), "hunter2") {
			t.Errorf("%s shows the password: %s", a.Key, a.Value)
		}
	}
}

// The README's configuration table lists every variable with its default.
func TestTheREADMEListsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Vars {
		def := "`" + v.Default + "`"
		if v.Default == "" {
			def = "(empty)"
		}
		if row := "| `" + v.Name + "` | " + def + " |"; !strings.Contains(string(readme), row) {
			t.Errorf("README lacks the row %q", row)
		}
	}
}

// A child given Environ(c) loads c again, every variable, secrets too. The
// test's configuration sets each variable away from its default, so that one
// Environ left out or wrote back wrong shows.
func TestEnvironIsTheConfigAChildLoadsAgain(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte(testCAPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	set := map[*Var]string{
		KafkaBrokers: "a:9092,b:9093", KafkaTopic: "t", KafkaDLQTopic: "t.dlq", KafkaGroup: "g", KafkaAnalyticsGroup: "ag", KafkaNotifyGroup: "ng",
		KafkaPartitions: "7", KafkaReplicationFactor: "3", KafkaRetention: "90m", KafkaClientID: "cid",
		KafkaTLS: "true", KafkaTLSCAFile: ca, KafkaSASLMechanism: "SCRAM-SHA-256", KafkaSASLUsername: "u", KafkaSASLPassword: "hunter2",
		DatabaseURL: "postgres://u:hunter2@db:5433/x", DBMaxConns: "9", DBConnectTimeout: "2m", DBMigrate: "false",
		ProducerRate: "12.5", ProducerRetries: "5", ProducerLinger: "5ms",
		ConsumerBatchSize: "700", ConsumerWriters: "2", ConsumerDBRetries: "0", ConsumerSessionTimeout: "30s", ConsumerGroupProtocol: "consumer", ConsumerFetchMaxWait: "10ms", ConsumerFetchMinBytes: "4096",
		StatsInterval: "1m", MetricsAddr: ":9100", MetricsAddrFile: "/tmp/metrics-addr", LogLevel: "debug",
		SMTPURL: "smtp://mail:2525", NotifyBatchSize: "20", MailAPIURL: "http://mail:9025",
	}
	vals := map[string]string{}
	for _, v := range Vars {
		val, ok := set[v]
		if !ok || val == v.Default {
			t.Fatalf("the test sets %s to %q: give it a value other than its default", v.Name, val)
		}
		vals[v.Name] = val
	}
	c, err := Load(func(k string) (string, bool) { v, ok := vals[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	environ := Environ(c)
	if len(environ) != len(Vars) {
		t.Fatalf("Environ has %d entries for %d variables", len(environ), len(Vars))
	}
	child := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		child[k] = v
	}
	again, err := Load(func(k string) (string, bool) { v, ok := child[k]; return v, ok })
	if err != nil {
		t.Fatalf("a child given %v: %v", environ, err)
	}
	if !reflect.DeepEqual(again, c) {
		t.Errorf("a child loads\n%+v\nwant\n%+v", again, c)
	}
}

// A handle is its variable in Vars, once.
func TestEveryVariableIsDeclaredOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Vars {
		if v == nil || seen[v.Name] {
			t.Fatalf("Vars holds %v twice or nil", v)
		}
		seen[v.Name] = true
		if got := v.Env("x"); got != v.Name+"=x" {
			t.Errorf("Env = %q", got)
		}
	}
}
