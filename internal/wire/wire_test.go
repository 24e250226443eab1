package wire_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/store/dbtest"
	"foodpipe/internal/wire"
)

// syncBuffer is a log destination safe for the writes of several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// throughProxy is a config whose DATABASE_URL reaches a fresh database
// through a cut proxy, with password in the URL.
func throughProxy(t *testing.T, password string) (config.Config, *harness.CutProxy) {
	t.Helper()
	u, err := url.Parse(dbtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := harness.NewCutProxy(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	proxy.Cut()
	u.Host = proxy.Addr()
	u.User = url.UserPassword(u.User.Username(), password)
	cfg := config.Default()
	cfg.DatabaseURL = u.String()
	return cfg, proxy
}

// A start-up that finds PostgreSQL away waits for it: one log line when it
// begins to wait, none per attempt, one when the database answers; waiting
// is told why after every attempt; the migrations run once it answers.
func TestAwaitStoreWaitsForTheDatabaseAndSaysSoOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	t.Parallel()
	cfg, proxy := throughProxy(t, "")
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	var mu sync.Mutex
	var whys []error
	time.AfterFunc(3*time.Second, proxy.Mend)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := wire.AwaitStore(ctx, cfg, true, log, func(why error) {
		mu.Lock()
		defer mu.Unlock()
		whys = append(whys, why)
	})
	if err != nil {
		t.Fatalf("AwaitStore: %v", err)
	}
	defer st.Close()
	if err := st.Writable(ctx); err != nil {
		t.Errorf("the store it returns: %v", err)
	}
	if _, err := st.Count(ctx); err != nil {
		t.Errorf("the migrations were not applied: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(whys) < 3 {
		t.Errorf("waiting was told %d times in 3 s, want one per attempt", len(whys))
	}
	for _, why := range whys {
		if !strings.Contains(why.Error(), "waiting for PostgreSQL") || !strings.Contains(why.Error(), proxy.Addr()) {
			t.Errorf("waiting was told %q, want it to say it waits for PostgreSQL at %s", why, proxy.Addr())
			break
		}
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "PostgreSQL does not answer: waiting for it") ||
		!strings.Contains(lines[1], "PostgreSQL answers: starting") {
		t.Errorf("the log, for %d attempts, is:\n%s\nwant one line when the wait begins and one when it ends", len(whys)+1, logs.String())
	}
}

// With DB_CONNECT_TIMEOUT, a database that does not answer in time is an
// error naming the database and the setting, not the password; a stop
// during the wait is the stop's, and an error no wait can mend (no such
// database) ends the wait at once.
func TestAwaitStoreGivesUp(t *testing.T) {
	t.Parallel()
	const password = "hunter2-secret"
	t.Run("after DB_CONNECT_TIMEOUT", func(t *testing.T) {
		t.Parallel()
		cfg, proxy := throughProxy(t, password)
		cfg.DBConnectTimeout = 2 * time.Second
		began := time.Now()
		_, err := wire.AwaitStore(context.Background(), cfg, false, slog.New(slog.DiscardHandler), nil)
		if took := time.Since(began); took > 4*time.Second {
			t.Errorf("it gave up after %v, want about 2 s", took)
		}
		if err == nil || !strings.Contains(err.Error(), "gave up waiting for PostgreSQL after 2s (DB_CONNECT_TIMEOUT)") ||
			!strings.Contains(err.Error(), proxy.Addr()+"/foodpipe_test_") || strings.Contains(err.Error(), password) {
			t.Errorf("AwaitStore = %v, want it to give up naming DB_CONNECT_TIMEOUT and %s/<database>, without the password", err, proxy.Addr())
		}
	})
	t.Run("when stopped", func(t *testing.T) {
		t.Parallel()
		cfg, _ := throughProxy(t, password)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		if _, err := wire.AwaitStore(ctx, cfg, false, slog.New(slog.DiscardHandler), nil); !errors.Is(err, context.Canceled) {
			t.Errorf("AwaitStore stopped = %v, want context.Canceled", err)
		}
	})
	t.Run("for a database that does not exist", func(t *testing.T) {
		t.Parallel()
		cfg := config.Default()
		cfg.DatabaseURL = strings.Replace(dbtest.New(t), "foodpipe_test_", "foodpipe_missing_", 1)
		began := time.Now()
		_, err := wire.AwaitStore(context.Background(), cfg, false, slog.New(slog.DiscardHandler), nil)
		if err == nil || time.Since(began) > 5*time.Second {
			t.Errorf("AwaitStore of a missing database = %v after %v, want an error at once", err, time.Since(began))
		}
	})
}

// A member built from the defaults runs on the values the Vars table
// declares, read from the table's own text: a default written again
// anywhere between the table and the consumer shows here (and one the
// consumer would fill in is refused by consumer.New).
func TestAMemberOnTheDefaultsRunsOnTheDeclaredValues(t *testing.T) {
	cc := wire.ConsumerConfig(config.Default(), "c1")
	for _, tt := range []struct {
		v   *config.Var
		got string
	}{
		{config.KafkaGroup, cc.Group},
		{config.KafkaTopic, cc.Topic},
		{config.KafkaDLQTopic, cc.DLQTopic},
		{config.ConsumerBatchSize, strconv.Itoa(cc.BatchSize)},
		{config.ConsumerWriters, strconv.Itoa(cc.Writers)},
		{config.ConsumerDBRetries, strconv.Itoa(cc.DBRetries)},
		{config.ConsumerSessionTimeout, cc.SessionTimeout.String()},
		{config.ConsumerFetchMaxWait, cc.FetchMaxWait.String()},
		{config.ConsumerFetchMinBytes, strconv.Itoa(int(cc.FetchMinBytes))},
		{config.StatsInterval, cc.StatsInterval.String()},
	} {
		if tt.got != tt.v.Default {
			t.Errorf("the member runs on %s=%s, but the default declared is %s", tt.v.Name, tt.got, tt.v.Default)
		}
	}
	if want := config.KafkaClientID.Default + "-c1"; cc.ClientID != want || cc.InstanceID != "c1" || cc.ID != "c1" {
		t.Errorf("the member is %q with client id %q and instance id %q, want c1, %q, c1", cc.ID, cc.ClientID, cc.InstanceID, want)
	}
	if cc.ShutdownTimeout <= 0 {
		t.Errorf("the member has no shutdown budget: %v", cc.ShutdownTimeout)
	}
}
