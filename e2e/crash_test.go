package e2e

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"foodpipe/internal/store/dbtest"
)

// pipeline is a broker process and the environment its clients share.
type pipeline struct {
	addr, dataDir, db string
	env               []string
	broker            *proc
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	p := &pipeline{addr: freeAddr(t), dataDir: t.TempDir(), db: dbtest.New(t)}
	p.env = []string{"KAFKA_BROKERS=" + p.addr, "DATABASE_URL=" + p.db}
	p.broker = startBroker(t, p.addr, p.dataDir)
	// Migrate once up front, as a deployment's migration job does.
	if code := start(t, "migrate", p.env, "migrate", "up").wait(30 * time.Second); code != 0 {
		t.Fatalf("migrate up exited %d", code)
	}
	return p
}

func (p *pipeline) consumer(t *testing.T, id string) *proc {
	return start(t, id, p.env, "consume", "--id", id)
}

// checkEveryOrderOnce asserts that the table holds exactly the orders on the
// topic, each once, and that nothing valid went to the dead-letter topic.
func (p *pipeline) checkEveryOrderOnce(t *testing.T, produced int) {
	t.Helper()
	eventually(t, 90*time.Second, fmt.Sprintf("%d orders in the table", produced), func() bool {
		return storedCount(t, p.db) >= produced
	})
	onTopic := topicMessages(t, p.addr, "food-orders")
	if onTopic != int64(produced) {
		t.Errorf("the topic holds %d messages for %d produced orders: the producer wrote duplicates", onTopic, produced)
	}
	ids := topicOrderIDs(t, p.addr, "food-orders", produced)
	if len(ids) != produced {
		t.Fatalf("%d distinct order ids on the topic, want %d", len(ids), produced)
	}
	if n := storedCount(t, p.db); n != produced {
		t.Errorf("table holds %d rows, want %d", n, produced)
	}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	if missing := query[int](t, p.db, "SELECT count(*)::int FROM unnest($1::text[]) AS id WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = id)", list); missing != 0 {
		t.Errorf("%d orders from the topic are not in the table", missing)
	}
	if dead := topicMessages(t, p.addr, "food-orders.dlq"); dead != 0 {
		t.Errorf("%d valid orders went to the dead-letter topic", dead)
	}
	// The offsets stored with the orders have reached the end of every
	// partition (those of the orders group: an analytics member may store its own).
	if next := query[int64](t, p.db, "SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets WHERE group_id = 'order-processors' AND topic LIKE 'food-orders@%'"); next != int64(produced) {
		t.Errorf("stored offsets sum to %d, want %d", next, produced)
	}
}

// Kill -9 a consumer again and again while orders flow, restart it each
// time: every order ends up in the table exactly once.
func TestConsumersKilledAgainAndAgainLoseAndDoubleNothing(t *testing.T) {
	p := newPipeline(t)
	const orders = 4000
	consumers := []*proc{p.consumer(t, "c1"), p.consumer(t, "c2")}
	producer := start(t, "producer", p.env, "produce", "--count", fmt.Sprint(orders), "--rate", "400")

	kills := 0
	for !producer.exited() || kills < 6 {
		time.Sleep(time.Duration(600+rand.IntN(900)) * time.Millisecond)
		i := rand.IntN(len(consumers))
		consumers[i].Signal(syscall.SIGKILL)
		consumers[i].wait(5 * time.Second)
		consumers[i] = p.consumer(t, fmt.Sprintf("c%d-%d", i+1, kills))
		kills++
	}
	if code := producer.wait(time.Minute); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	t.Logf("killed a consumer %d times", kills)
	p.checkEveryOrderOnce(t, orders)
	for _, c := range consumers {
		if code, took := c.stop(syscall.SIGTERM, 10*time.Second); code != 0 {
			t.Errorf("%s: SIGTERM exit %d after %v", c.Name, code, took)
		}
	}
}

// SIGTERM a consumer again and again while orders flow: each one finishes its
// batch, commits, leaves the group and exits 0 within 10 s; nothing is lost
// or doubled.
func TestConsumersStoppedAgainAndAgainExitCleanlyAndLoseNothing(t *testing.T) {
	p := newPipeline(t)
	const orders = 3000
	consumers := []*proc{p.consumer(t, "c1"), p.consumer(t, "c2")}
	producer := start(t, "producer", p.env, "produce", "--count", fmt.Sprint(orders), "--rate", "400")

	stops := 0
	for !producer.exited() || stops < 4 {
		time.Sleep(time.Duration(800+rand.IntN(800)) * time.Millisecond)
		i := rand.IntN(len(consumers))
		code, took := consumers[i].stop(syscall.SIGTERM, 10*time.Second)
		if code != 0 {
			t.Fatalf("%s: SIGTERM exit code %d after %v", consumers[i].Name, code, took)
		}
		consumers[i] = p.consumer(t, fmt.Sprintf("c%d-%d", i+1, stops))
		stops++
	}
	if code := producer.wait(time.Minute); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	p.checkEveryOrderOnce(t, orders)
	for _, c := range consumers {
		if code, took := c.stop(syscall.SIGINT, 10*time.Second); code != 0 {
			t.Errorf("%s: SIGINT exit %d after %v", c.Name, code, took)
		}
	}
}

// Restart the broker (data dir kept) while producer and consumer run: the
// producer retries without duplicating, the consumer rejoins, nothing is lost.
func TestABrokerRestartLosesAndDoublesNothing(t *testing.T) {
	p := newPipeline(t)
	const orders = 2000
	c := p.consumer(t, "c1")
	producer := start(t, "producer", p.env, "produce", "--count", fmt.Sprint(orders), "--rate", "400")
	eventually(t, 20*time.Second, "orders flowing and stored", func() bool {
		return topicMessages(t, p.addr, "food-orders") >= 400 && storedCount(t, p.db) > 0
	})
	if code, _ := p.broker.stop(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Fatalf("broker exit %d", code)
	}
	p.broker = startBroker(t, p.addr, p.dataDir)
	if code := producer.wait(time.Minute); code != 0 {
		t.Fatalf("producer exited %d across the broker restart", code)
	}
	p.checkEveryOrderOnce(t, orders)
	if code, took := c.stop(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Errorf("consumer SIGTERM exit %d after %v", code, took)
	}
}

// A producer started with no broker fails with a clear message and a
// non-zero exit after its retry budget.
func TestAProducerWithNoBrokerFailsClearly(t *testing.T) {
	addr := freeAddr(t)
	pr := start(t, "producer", []string{"KAFKA_BROKERS=" + addr}, "produce", "--count", "1")
	code := pr.wait(60 * time.Second)
	if code == 0 || code == -1 {
		t.Fatalf("exit code %d, want a failure", code)
	}
	out := pr.Log()
	if want := "no Kafka broker reachable at " + addr; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}
