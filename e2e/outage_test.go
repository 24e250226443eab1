package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"foodpipe/internal/harness"
)

// newCutProxy is a harness.CutProxy in front of target, closed with the test.
func newCutProxy(t *testing.T, target string) *harness.CutProxy {
	t.Helper()
	p, err := harness.NewCutProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// Cut the consumer's database for 30 s while orders flow: it opens its
// circuit breaker, stops taking records, stays up, and resumes by itself when
// the database is back. Nothing is lost; nothing valid goes to the DLQ.
func TestADatabaseOutageIsRiddenOut(t *testing.T) {
	p := newPipeline(t)
	proxy := newCutProxy(t, "127.0.0.1:5432")
	viaProxy := append([]string{}, p.env...)
	viaProxy[1] = "DATABASE_URL=" + strings.Replace(p.db, "127.0.0.1:5432", proxy.Addr(), 1)

	const orders = 4000
	metrics := freeAddr(t)
	c := start(t, "consumer", append(viaProxy, "METRICS_ADDR="+metrics), "consume", "--id", "c1")
	producer := start(t, "producer", p.env, "produce", "--count", "4000", "--rate", "100")
	eventually(t, 20*time.Second, "the first orders to be stored", func() bool { return storedCount(t, p.db) > 0 })

	proxy.Cut()
	cutAt := time.Now()
	eventually(t, 20*time.Second, "the circuit breaker to open", func() bool {
		return metricValue(metrics, "foodpipe_db_breaker_open") == 1
	})
	// While the database is away the consumer stays up and stores nothing.
	during := storedCount(t, p.db)
	time.Sleep(30*time.Second - time.Since(cutAt))
	if c.exited() {
		t.Fatalf("the consumer exited during the outage")
	}
	if n := storedCount(t, p.db); n != during {
		t.Errorf("rows went from %d to %d while the database was cut off", during, n)
	}
	proxy.Mend()
	eventually(t, 30*time.Second, "the circuit breaker to close", func() bool {
		return metricValue(metrics, "foodpipe_db_breaker_open") == 0
	})
	if code := producer.wait(time.Minute); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	p.checkEveryOrderOnce(t, orders)
	if code, took := c.stop(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Errorf("consumer SIGTERM exit %d after %v", code, took)
	}
}
