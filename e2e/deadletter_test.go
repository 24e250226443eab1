package e2e

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/consumer"
	"foodpipe/internal/fault"
	"foodpipe/internal/order"
)

// produceRaw publishes values to the orders topic, each keyed by its index,
// and waits until the broker has them all.
func produceRaw(t *testing.T, addr string, values ...[]byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("food-orders"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for _, v := range values {
		recs = append(recs, &kgo.Record{Value: v, Partition: 0})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// dlqReasons reads the dead-letter topic and returns the reason of each
// dead letter, in order.
func dlqReasons(t *testing.T, addr string, want int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("food-orders.dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var reasons []string
	for len(reasons) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == "dlq.reason" {
					reasons = append(reasons, string(h.Value))
				}
			}
		})
	}
	return reasons
}

// A consumer killed right after the transaction that recorded dead letters
// commits, and before it publishes them: the offsets that cover them are
// stored, so the messages are never read again, yet every dead letter reaches
// the dead-letter topic, published by the consumer that comes next.
func TestDeadLettersSurviveACrashBetweenCommitAndPublish(t *testing.T) {
	p := newPipeline(t)
	gen := order.NewGenerator(7, time.Now)
	stored := gen.Next()
	conflicting := stored
	conflicting.Status = "cancelled"
	if conflicting.Status == stored.Status {
		conflicting.Status = "pending"
	}
	produceRaw(t, p.addr, stored.AppendJSON(nil), []byte("not an order"))

	crashing := append(append([]string{}, p.env...), fault.Env+"=consumer.dead-letters-recorded")
	c := start(t, "crashing", crashing, "consume", "--id", "crashing")
	c.wait(60 * time.Second)
	if !c.exited() || !strings.Contains(c.Log(), "fault point consumer.dead-letters-recorded") {
		t.Fatalf("the consumer did not crash at the fault point:\n%s", tail(c.Log(), 2000))
	}
	// The batch is committed: the order and the offset past the dead letter
	// are stored, and nothing is on the dead-letter topic yet.
	if n := storedCount(t, p.db); n != 1 {
		t.Fatalf("%d orders stored, want 1", n)
	}
	if next := query[int64](t, p.db, "SELECT next_offset FROM consumer_offsets WHERE kafka_partition = 0"); next != 2 {
		t.Fatalf("stored offset %d, want 2 (past the invalid message)", next)
	}
	if n := topicMessages(t, p.addr, "food-orders.dlq"); n != 0 {
		t.Fatalf("%d dead letters published before the crash", n)
	}

	// The next consumer publishes what the crashed one recorded; a second
	// crash, after a conflicting duplicate, is recovered the same way.
	c = start(t, "second", crashing, "consume", "--id", "second")
	produceRaw(t, p.addr, conflicting.AppendJSON(nil))
	c.wait(60 * time.Second)
	if !c.exited() {
		t.Fatalf("the second consumer did not crash at the fault point:\n%s", tail(c.Log(), 2000))
	}
	c = start(t, "third", p.env, "consume", "--id", "third")
	eventually(t, 30*time.Second, "both dead letters on the dead-letter topic", func() bool {
		return topicMessages(t, p.addr, "food-orders.dlq") >= 2
	})
	reasons := dlqReasons(t, p.addr, 2)
	slices.Sort(reasons)
	if want := []string{"conflicting_duplicate", "not_json"}; !slices.Equal(reasons, want) {
		t.Errorf("dead letters %v, want %v", reasons, want)
	}
	if n := query[int](t, p.db, "SELECT count(*)::int FROM dead_letters WHERE published_at IS NULL"); n != 0 {
		t.Errorf("%d dead letters still unpublished", n)
	}
	if code, took := c.stop(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Errorf("SIGTERM exit %d after %v", code, took)
	}
	if n := topicMessages(t, p.addr, "food-orders.dlq"); n != 2 {
		t.Errorf("%d dead letters on the topic, want exactly 2", n)
	}
}

// One member cut off from PostgreSQL (its own connections only) cannot hold
// the group: after its batch has failed for consumer.AwayAfter it drops the
// batch uncommitted and leaves, and within the rebalance timeout the others
// own its partitions and store everything. When its database comes back it
// joins again: no order is stored twice, none is skipped.
func TestAMemberCutFromTheDatabaseDoesNotHoldTheGroup(t *testing.T) {
	p := newPipeline(t)
	u, err := url.Parse(p.db)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host)
	cutEnv := append([]string{}, p.env...)
	cutEnv[1] = "DATABASE_URL=" + strings.Replace(p.db, u.Host, proxy.Addr(), 1)

	const orders = 3000
	cut := start(t, "cut", cutEnv, "consume", "--id", "cut")
	eventually(t, 20*time.Second, "the first member to own every partition", func() bool {
		return len(groupMembers(t, p.addr)) == 1
	})
	healthy := start(t, "healthy", p.env, "consume", "--id", "healthy")
	eventually(t, 30*time.Second, "two members sharing the partitions", func() bool {
		m := groupMembers(t, p.addr)
		return len(m) == 2 && m["cut"] > 0 && m["healthy"] > 0
	})
	producer := start(t, "producer", p.env, "produce", "--count", "3000", "--rate", "300")
	eventually(t, 20*time.Second, "the first orders to be stored", func() bool { return storedCount(t, p.db) > 0 })

	proxy.Cut()
	cutAt := time.Now()
	// The healthy member ends up with every partition, and stores everything.
	eventually(t, 60*time.Second, "the healthy member to own every partition", func() bool {
		m := groupMembers(t, p.addr)
		return m["healthy"] == 3 && m["cut"] == 0
	})
	took := time.Since(cutAt)
	t.Logf("the healthy member owned every partition %.1fs after the cut (rebalance timeout %v)", took.Seconds(), consumer.RebalanceTimeout)
	if took > consumer.RebalanceTimeout+5*time.Second {
		t.Errorf("the partitions moved %.1fs after the cut, well past the rebalance timeout", took.Seconds())
	}
	if code := producer.wait(time.Minute); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	eventually(t, 60*time.Second, "every order stored while the member is cut off", func() bool {
		return storedCount(t, p.db) == orders
	})
	if cut.exited() {
		t.Fatal("the cut-off member exited")
	}
	proxy.Mend()
	// Back, the member that was cut off joins the group again.
	eventually(t, 60*time.Second, "the member that was cut off to rejoin", func() bool {
		m := groupMembers(t, p.addr)
		return len(m) == 2 && m["cut"] > 0
	})
	p.checkEveryOrderOnce(t, orders)
	for _, c := range []*proc{cut, healthy} {
		if code, took := c.stop(syscall.SIGTERM, 15*time.Second); code != 0 {
			t.Errorf("%s: SIGTERM exit %d after %v", c.Name, code, took)
		}
	}
}
