package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// An operator deletes the orders topic under running members of both
// groups, leaves it deleted for a minute, then creates it again and orders
// flow. The members stay up, wait quietly (a bounded number of log lines,
// little CPU), say what happened, and store and count every order of the
// new topic once.
func TestATopicDeletedForAMinuteThenCreatedAgainUnderBothGroups(t *testing.T) {
	p := newPipeline(t)
	c := p.consumer(t, "c1")
	a := start(t, "a1", p.env, "analytics", "--id", "a1")
	if code := start(t, "producer", p.env, "produce", "--count", "2000", "--rate", "0").wait(time.Minute); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	eventually(t, 60*time.Second, "the first 2000 orders in both groups", func() bool {
		return storedCount(t, p.db) == 2000 && groupLag(t, p.addr, "order-analytics") == 0
	})

	ctx := context.Background()
	withAdmin(t, p.addr, func(adm *kadm.Client) {
		if _, err := adm.DeleteTopic(ctx, "food-orders"); err != nil {
			t.Fatal(err)
		}
	})
	lines := func(pr *proc) int { return strings.Count(pr.Log(), "\n") }
	linesBefore := map[*proc]int{c: lines(c), a: lines(a)}
	cpuBefore := map[*proc]time.Duration{c: c.CPUSoFar(), a: a.CPUSoFar()}
	const fault = 60 * time.Second
	time.Sleep(fault)
	for _, pr := range []*proc{c, a} {
		if pr.exited() {
			t.Fatalf("%s exited while the topic was gone", pr.Name)
		}
		// The stats line every second (STATS_INTERVAL=1s in these tests) is
		// 60 lines; what the fault adds must stay within a few dozen more.
		var faultLines []string
		for _, l := range strings.Split(strings.TrimSpace(pr.Log()), "\n")[linesBefore[pr]:] {
			if !strings.Contains(l, `"msg":"consumer stats"`) {
				faultLines = append(faultLines, l)
			}
		}
		used := pr.CPUSoFar() - cpuBefore[pr]
		t.Logf("%s in the %s the topic was gone: %d lines besides its stats, %s of CPU", pr.Name, fault, len(faultLines), used)
		if len(faultLines) > 40 {
			t.Errorf("%s logged %d lines besides its stats in the %s the topic was gone:\n%s", pr.Name, len(faultLines), fault,
				tail(strings.Join(faultLines, "\n"), 4000))
		}
		// A member that waits costs next to nothing; one in a busy loop
		// takes a core.
		if used > fault/10 {
			t.Errorf("%s used %s of CPU in the %s the topic was gone", pr.Name, used, fault)
		}
		if !strings.Contains(pr.Log(), "the topic does not exist (deleted?): waiting for it to be created") {
			t.Errorf("%s did not say the topic is gone", pr.Name)
		}
	}

	created := time.Now()
	withAdmin(t, p.addr, func(adm *kadm.Client) {
		if _, err := adm.CreateTopic(ctx, 3, 1, nil, "food-orders"); err != nil {
			t.Fatal(err)
		}
	})
	if code := start(t, "producer", p.env, "produce", "--count", "1500", "--rate", "0").wait(time.Minute); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	eventually(t, 60*time.Second, "the new topic's 1500 orders in both groups", func() bool {
		return storedCount(t, p.db) == 3500 && groupLag(t, p.addr, "order-analytics") == 0 &&
			query[int](t, p.db, "SELECT count(*)::int FROM analytics_orders_seen WHERE group_id = 'order-analytics'") == 3500
	})
	t.Logf("every order of the new topic stored and counted %s after it was created", time.Since(created).Round(100*time.Millisecond))
	for _, pr := range []*proc{c, a} {
		if !strings.Contains(pr.Log(), "the topic was deleted and created again") {
			t.Errorf("%s did not say the topic was created again", pr.Name)
		}
	}
	if dup := query[int](t, p.db, "SELECT count(*)::int FROM (SELECT order_id FROM orders GROUP BY order_id HAVING count(*) > 1) d"); dup != 0 {
		t.Errorf("%d orders stored twice", dup)
	}
	if next := query[int64](t, p.db, `SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets
		WHERE group_id = 'order-processors' AND topic = (SELECT topic FROM consumer_offsets ORDER BY updated_at DESC LIMIT 1)`); next != 1500 {
		t.Errorf("the new topic's stored offsets sum to %d, want 1500", next)
	}
	analyticsEqualOrders(t, p, "order-analytics")
	for _, pr := range []*proc{c, a} {
		if code, _ := pr.stop(syscall.SIGTERM, 15*time.Second); code != 0 {
			t.Errorf("%s exited %d", pr.Name, code)
		}
	}
}
