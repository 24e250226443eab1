package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// readyz returns the status code and body of a process's /readyz; 0 when it
// does not answer.
func readyz(addr string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// setReadOnly makes the database at dbURL refuse writes (on) or take them
// again (off) for new sessions, and ends its sessions: what a failover to a
// standby, and then to a writable primary, looks like to a client. Its
// connections drop, and the new ones find a server in the new state.
func setReadOnly(t *testing.T, dbURL string, on bool) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres" // a session elsewhere, which stays writable
	stmt := "ALTER DATABASE " + pgx.Identifier{name}.Sanitize() + " RESET default_transaction_read_only"
	if on {
		stmt = "ALTER DATABASE " + pgx.Identifier{name}.Sanitize() + " SET default_transaction_read_only = on"
	}
	withConn(t, u.String(), func(ctx context.Context, conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
		_, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
		return err
	})
}

// analyticsCounted is how many orders the analytics group has counted.
func analyticsCounted(t *testing.T, db string) int64 {
	t.Helper()
	return query[int64](t, db, "SELECT coalesce(sum(orders), 0)::bigint FROM analytics_minute WHERE group_id = 'order-analytics'")
}

// The database fails over to a server that refuses writes for 30 s (every
// session is ended, and new ones are read-only: SQLSTATE 25006), then to a
// writable one, while orders flow to a consumer and an analytics member.
// Neither exits: each holds its batch, opens its breaker, reports on /readyz
// that the database is read-only, leaves its group after 15 s, and joins
// again by itself once the database takes writes. Every order is stored
// once, and the aggregates count each once.
func TestAFailoverToAReadOnlyDatabaseIsRiddenOut(t *testing.T) {
	p := newPipeline(t)
	const orders = 5000
	cMetrics, aMetrics := freeAddr(t), freeAddr(t)
	c := start(t, "consumer", append(p.env, "METRICS_ADDR="+cMetrics), "consume", "--id", "c1")
	a := start(t, "analytics", append(p.env, "METRICS_ADDR="+aMetrics), "analytics", "--id", "a1")
	producer := start(t, "producer", p.env, "produce", "--count", fmt.Sprint(orders), "--rate", "100")
	eventually(t, 30*time.Second, "the first orders to be stored and counted", func() bool {
		return storedCount(t, p.db) > 0 && analyticsCounted(t, p.db) > 0
	})

	setReadOnly(t, p.db, true)
	readOnlyAt := time.Now()
	members := map[string]string{"consumer": cMetrics, "analytics": aMetrics}
	for name, addr := range members {
		eventually(t, 20*time.Second, name+"'s circuit breaker to open", func() bool {
			if c.exited() || a.exited() {
				t.Fatalf("a member exited when the database became read-only (consumer %d, analytics %d)", c.ExitCode(), a.ExitCode())
			}
			return metricValue(addr, "foodpipe_db_breaker_opens_total") >= 1
		})
		eventually(t, 10*time.Second, name+"'s /readyz to say the database is read-only", func() bool {
			code, body := readyz(addr)
			return code == http.StatusServiceUnavailable && strings.Contains(body, "read-only")
		})
	}
	for name, addr := range members {
		eventually(t, 25*time.Second, name+" to leave its group until the database takes writes", func() bool {
			return metricValue(addr, "foodpipe_database_away") == 1
		})
	}
	_, body := readyz(cMetrics)
	t.Logf("the consumer's /readyz while the database is read-only: %s", body)
	stored, counted := storedCount(t, p.db), analyticsCounted(t, p.db)
	time.Sleep(30*time.Second - time.Since(readOnlyAt))
	for _, m := range []*proc{c, a} {
		if m.exited() {
			t.Fatalf("%s exited while the database was read-only (code %d)", m.Name, m.ExitCode())
		}
	}

	setReadOnly(t, p.db, false)
	writableAt := time.Now()
	var firstStored, firstCounted time.Duration
	eventually(t, 60*time.Second, "orders stored and counted again", func() bool {
		if firstStored == 0 && storedCount(t, p.db) > stored {
			firstStored = time.Since(writableAt)
		}
		if firstCounted == 0 && analyticsCounted(t, p.db) > counted {
			firstCounted = time.Since(writableAt)
		}
		return firstStored > 0 && firstCounted > 0
	})
	t.Logf("writable again: the first order stored after %.1fs, the first counted after %.1fs",
		firstStored.Seconds(), firstCounted.Seconds())
	for name, addr := range members {
		eventually(t, 30*time.Second, name+" to be ready again", func() bool {
			code, _ := readyz(addr)
			return code == http.StatusOK
		})
	}

	if code := producer.wait(2 * time.Minute); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	p.checkEveryOrderOnce(t, orders)
	eventually(t, 90*time.Second, "the analytics group to catch up", func() bool {
		return groupLag(t, p.addr, "order-analytics") == 0
	})
	if n := analyticsCounted(t, p.db); n != orders {
		t.Errorf("the aggregates count %d orders, want %d", n, orders)
	}
	analyticsEqualOrders(t, p, "order-analytics")
	for _, m := range []*proc{c, a} {
		if code, took := m.stop(syscall.SIGTERM, 10*time.Second); code != 0 {
			t.Errorf("%s: SIGTERM exit %d after %v", m.Name, code, took)
		}
	}
}
