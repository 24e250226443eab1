package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"foodpipe/internal/kafka"
)

// groupLag is what group has still to read of the orders topic.
func groupLag(t *testing.T, addr, group string) int64 {
	t.Helper()
	var lag int64
	withAdmin(t, addr, func(adm *kadm.Client) {
		v, err := kafka.InspectGroup(context.Background(), adm, "food-orders", group)
		if err != nil {
			t.Fatal(err)
		}
		lag = v.Lag()
	})
	return lag
}

// analyticsEqualOrders runs `foodpipe analytics verify` for group: every
// aggregate must equal the same sum over the orders table, to the cent, and
// the group must have counted every order the table holds.
func analyticsEqualOrders(t *testing.T, p *pipeline, group string) {
	t.Helper()
	v := start(t, "verify "+group, append(p.env, "KAFKA_ANALYTICS_GROUP="+group), "analytics", "verify")
	if code := v.wait(30 * time.Second); code != 0 {
		t.Errorf("analytics verify for %s exited %d:\n%s", group, code, tail(v.Log(), 3000))
	} else if !strings.Contains(v.Log(), "has counted every order in the table") {
		t.Errorf("analytics verify for %s: the group has not counted every order:\n%s", group, tail(v.Log(), 3000))
	}
}

// SIGKILL the analytics member again and again while orders flow: once both
// groups have caught up, every aggregate equals the orders table's, so no
// order was counted twice or missed. A replay of the whole topic into a new
// analytics group then gives the very same aggregates.
func TestAnalyticsKilledAgainAndAgainCountsEveryOrderOnce(t *testing.T) {
	p := newPipeline(t)
	const orders = 4000
	c := p.consumer(t, "c1")
	a := start(t, "a1", p.env, "analytics", "--id", "a1")
	producer := start(t, "producer", p.env, "produce", "--count", fmt.Sprint(orders), "--rate", "400")
	kills := 0
	for !producer.exited() || kills < 10 {
		time.Sleep(time.Duration(300+rand.IntN(600)) * time.Millisecond)
		_ = a.Signal(syscall.SIGKILL)
		a.wait(5 * time.Second)
		a = start(t, "a1", p.env, "analytics", "--id", "a1") // its place back at once: static membership
		kills++
	}
	if code := producer.wait(time.Minute); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	t.Logf("killed the analytics member %d times", kills)
	eventually(t, 90*time.Second, "both groups to catch up", func() bool {
		return groupLag(t, p.addr, "order-processors") == 0 && groupLag(t, p.addr, "order-analytics") == 0
	})
	if n := storedCount(t, p.db); n != orders {
		t.Fatalf("%d orders stored, want %d", n, orders)
	}
	if n := query[int64](t, p.db, "SELECT coalesce(sum(orders), 0)::bigint FROM analytics_minute WHERE group_id = 'order-analytics'"); n != orders {
		t.Errorf("the aggregates count %d orders, want %d", n, orders)
	}
	analyticsEqualOrders(t, p, "order-analytics")

	// A new group reads the topic from its start and must come to the same.
	replay := start(t, "replay", append(p.env, "KAFKA_ANALYTICS_GROUP=order-analytics-replay"), "analytics", "--id", "r1")
	eventually(t, 60*time.Second, "the replay group to catch up", func() bool {
		return groupLag(t, p.addr, "order-analytics-replay") == 0
	})
	same := query[bool](t, p.db, `SELECT
		(SELECT array_agg(row(minute, orders, revenue) ORDER BY minute) FROM analytics_minute WHERE group_id = 'order-analytics') IS NOT DISTINCT FROM
		(SELECT array_agg(row(minute, orders, revenue) ORDER BY minute) FROM analytics_minute WHERE group_id = 'order-analytics-replay')
	AND (SELECT array_agg(row(minute, item, quantity, revenue) ORDER BY minute, item) FROM analytics_item_minute WHERE group_id = 'order-analytics') IS NOT DISTINCT FROM
		(SELECT array_agg(row(minute, item, quantity, revenue) ORDER BY minute, item) FROM analytics_item_minute WHERE group_id = 'order-analytics-replay')
	AND (SELECT array_agg(row(customer_id, orders, spent, last_order_at) ORDER BY customer_id) FROM analytics_customer WHERE group_id = 'order-analytics') IS NOT DISTINCT FROM
		(SELECT array_agg(row(customer_id, orders, spent, last_order_at) ORDER BY customer_id) FROM analytics_customer WHERE group_id = 'order-analytics-replay')`)
	if !same {
		t.Error("the replay group's aggregates differ from the first group's")
	}
	analyticsEqualOrders(t, p, "order-analytics-replay")
	for _, m := range []*proc{c, a, replay} {
		if code, took := m.stop(syscall.SIGTERM, 10*time.Second); code != 0 {
			t.Errorf("%s: SIGTERM exit %d after %v", m.Name, code, took)
		}
	}
}

// With analytics stopped, its lag grows by every order produced while the
// orders group keeps up: the groups read the topic each at its own pace.
// Restarted, analytics catches up and its aggregates are whole.
func TestAnalyticsFallsBehindAloneAndCatchesUp(t *testing.T) {
	p := newPipeline(t)
	c := p.consumer(t, "c1")
	a := start(t, "a1", p.env, "analytics", "--id", "a1")
	if code := start(t, "producer", p.env, "produce", "--count", "300", "--rate", "0").wait(time.Minute); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	eventually(t, 30*time.Second, "both groups to catch up", func() bool {
		return groupLag(t, p.addr, "order-processors") == 0 && groupLag(t, p.addr, "order-analytics") == 0
	})

	if code, took := a.stop(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Fatalf("analytics: SIGTERM exit %d after %v", code, took)
	}
	if code := start(t, "producer", p.env, "produce", "--count", "1000", "--rate", "250").wait(time.Minute); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	eventually(t, 30*time.Second, "the orders group to catch up", func() bool {
		return groupLag(t, p.addr, "order-processors") == 0
	})
	if lag := groupLag(t, p.addr, "order-analytics"); lag != 1000 {
		t.Errorf("analytics lag %d while it was stopped, want 1000 (the orders produced meanwhile)", lag)
	}
	if n := storedCount(t, p.db); n != 1300 {
		t.Errorf("%d orders stored while analytics was stopped, want 1300", n)
	}

	a = start(t, "a1", p.env, "analytics", "--id", "a1")
	eventually(t, 30*time.Second, "analytics to catch up", func() bool {
		return groupLag(t, p.addr, "order-analytics") == 0
	})
	analyticsEqualOrders(t, p, "order-analytics")
	for _, m := range []*proc{c, a} {
		if code, took := m.stop(syscall.SIGTERM, 10*time.Second); code != 0 {
			t.Errorf("%s: SIGTERM exit %d after %v", m.Name, code, took)
		}
	}
}
