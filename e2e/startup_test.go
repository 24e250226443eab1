package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

// viaProxy is the pipeline's environment with the database reached through
// proxy, its URL carrying password as the password.
func viaProxy(t *testing.T, p *pipeline, proxy string, password string) []string {
	t.Helper()
	u, err := url.Parse(p.db)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = proxy
	if password != "" {
		u.User = url.UserPassword(u.User.Username(), password)
	}
	env := append([]string{}, p.env...)
	for i, kv := range env {
		if strings.HasPrefix(kv, "DATABASE_URL=") {
			env[i] = "DATABASE_URL=" + u.String()
		}
	}
	return env
}

// A consumer started while PostgreSQL cannot be reached waits for it, as
// Kafka clients wait for their brokers: it stays up, /readyz says it waits
// for PostgreSQL, and once the database answers it starts and stores every
// order produced meanwhile, once.
func TestAConsumerStartedBeforeItsDatabaseWaitsForIt(t *testing.T) {
	p := newPipeline(t)
	proxy := newCutProxy(t, "127.0.0.1:5432")
	proxy.Cut()
	metrics := freeAddr(t)
	const orders = 1000
	c := start(t, "consumer", append(viaProxy(t, p, proxy.Addr(), ""), "METRICS_ADDR="+metrics), "consume", "--id", "c1")
	startedAt := time.Now()
	eventually(t, 10*time.Second, "/readyz to say the consumer waits for PostgreSQL", func() bool {
		code, body := readyz(metrics)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "waiting for PostgreSQL")
	})
	_, body := readyz(metrics)
	t.Logf("/readyz while PostgreSQL is away: %s", body)
	if code, _ := readyz(metrics); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d while PostgreSQL is away, want 503", code)
	}
	if v := metricValue(metrics, "foodpipe_database_away"); v != 1 {
		t.Errorf("foodpipe_database_away = %v while PostgreSQL is away, want 1", v)
	}
	producer := start(t, "producer", p.env, "produce", "--count", "1000", "--rate", "200")
	time.Sleep(10*time.Second - time.Since(startedAt))
	if c.exited() {
		t.Fatalf("the consumer exited while PostgreSQL was away (code %d)", c.ExitCode())
	}
	if code, body := readyz(metrics); code != http.StatusServiceUnavailable || !strings.Contains(body, "waiting for PostgreSQL") {
		t.Errorf("/readyz = %d %q after 10 s without PostgreSQL, want 503 saying it waits", code, body)
	}

	proxy.Mend()
	mendedAt := time.Now()
	eventually(t, 30*time.Second, "the first order to be stored", func() bool { return storedCount(t, p.db) > 0 })
	t.Logf("PostgreSQL reachable again: the first order stored after %.1fs", time.Since(mendedAt).Seconds())
	eventually(t, 30*time.Second, "the consumer to be ready", func() bool {
		code, _ := readyz(metrics)
		return code == http.StatusOK
	})
	if code := producer.wait(time.Minute); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	p.checkEveryOrderOnce(t, orders)
	if code, took := c.stop(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Errorf("consumer SIGTERM exit %d after %v", code, took)
	}
}

// With DB_CONNECT_TIMEOUT set, a consumer whose database does not answer
// within it stops with an error that names the database and the setting,
// never the password.
func TestAConsumerWhoseDatabaseDoesNotAnswerInTimeStopsClearly(t *testing.T) {
	p := newPipeline(t)
	proxy := newCutProxy(t, "127.0.0.1:5432")
	proxy.Cut()
	const password = "hunter2-secret"
	for _, kind := range [][]string{{"consume", "--id", "c1"}, {"analytics", "--id", "a1"}} {
		t.Run(kind[0], func(t *testing.T) {
			m := start(t, kind[0], append(viaProxy(t, p, proxy.Addr(), password), "DB_CONNECT_TIMEOUT=3s"), kind...)
			began := time.Now()
			code := m.wait(30 * time.Second)
			took := time.Since(began)
			if code == 0 || code == -1 {
				t.Fatalf("exit code %d after %v, want a failure", code, took)
			}
			if took > 15*time.Second {
				t.Errorf("it stopped after %v, want about DB_CONNECT_TIMEOUT (3s)", took)
			}
			out := m.Log()
			dbName := p.db[strings.LastIndexByte(p.db, '/')+1:]
			dbName, _, _ = strings.Cut(dbName, "?")
			for _, want := range []string{"gave up waiting for PostgreSQL after 3s (DB_CONNECT_TIMEOUT)", proxy.Addr() + "/" + dbName} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, password) {
				t.Errorf("the output shows the password:\n%s", out)
			}
			t.Logf("exit %d after %.1fs: %s", code, took.Seconds(), lastLine(out))
		})
	}
}

// lastLine is the last non-empty line of out.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}
