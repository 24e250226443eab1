package demo

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"foodpipe/internal/consumer"
	"foodpipe/internal/harness"
)

// startedView is a view of a demo that has started, with three partitions
// and members ids, drawn only when the test ticks it.
func startedView(t *testing.T, out *harness.LogBuffer, tty bool, ids ...string) *View {
	t.Helper()
	v := NewView(out, tty, 100)
	v.every = time.Hour
	v.Observe(Started{Broker: "127.0.0.1:9092", Topic: "food-orders", Partitions: 3, Members: ids})
	t.Cleanup(v.Close)
	return v
}

// The group's first rebalance, as the demo meets it before any order is
// produced: consumer-1 took all three partitions, then gave partition 2 up
// for consumer-2, which has not received it yet. The view still shows
// partition 2, and says why it has no owner.
func TestViewShowsEveryPartitionDuringARebalance(t *testing.T) {
	rebalance := func(v *View) {
		now := time.Now()
		v.Observe(Member{Event: consumer.Assigned{Member: "consumer-1", At: now, Owned: []int32{0, 1, 2}}})
		v.Observe(Member{Event: consumer.Assigned{Member: "consumer-1", At: now, Owned: []int32{0, 1}}})
	}
	t.Run("on a terminal every partition has a line, the unowned one says so", func(t *testing.T) {
		var out harness.LogBuffer
		v := startedView(t, &out, true, "consumer-1", "consumer-2")
		rebalance(v)
		v.tick()
		for _, want := range []string{"partition 0", "partition 1", "partition 2"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("no line for %s:\n%s", want, out.String())
			}
		}
		if !shownUnowned(out.String(), 2) {
			t.Errorf("partition 2 is not shown without an owner, rebalancing:\n%s", out.String())
		}
	})
	t.Run("piped, the line counts every partition and names the unowned", func(t *testing.T) {
		var out harness.LogBuffer
		v := startedView(t, &out, false, "consumer-1", "consumer-2")
		rebalance(v)
		v.tick()
		line := lastLine(out.String())
		if !strings.Contains(line, "p0 0/0  p1 0/0  p2 0/0") || !strings.Contains(line, "no owner (rebalancing): [2]") {
			t.Errorf("progress line %q", line)
		}
	})
	t.Run("with every member stopped, no partition is said to be rebalancing", func(t *testing.T) {
		var out harness.LogBuffer
		v := startedView(t, &out, true, "consumer-1")
		v.Observe(Member{Event: consumer.Assigned{Member: "consumer-1", At: time.Now(), Owned: []int32{0, 1, 2}}})
		v.stopMember("consumer-1", "stopped by the test")
		v.Observe(Member{Event: consumer.Assigned{Member: "consumer-1", At: time.Now(), Owned: []int32{}}})
		v.tick()
		if strings.Contains(out.String(), "rebalancing") || !strings.Contains(out.String(), "(no owner: no member running)") {
			t.Errorf("partitions of a group with no member running:\n%s", out.String())
		}
	})
}

// Piped, the view tells the demo's steps as lines: where the broker is,
// each order acknowledged counted on its partition, a member stopped, the
// analytics group's rebalances apart from the orders group's, and one last
// line once the orders are counted.
func TestViewTellsTheDemosEventsAsPlainLines(t *testing.T) {
	var out harness.LogBuffer
	v := startedView(t, &out, false, "consumer-1", "consumer-2")
	now := time.Now()
	v.Observe(Member{Event: consumer.Assigned{Member: "consumer-1", At: now, Owned: []int32{0, 1, 2}}})
	v.Observe(Acked{OrderID: "ORD-1", Partition: 1})
	v.Observe(Member{Event: consumer.BatchStored{Member: "consumer-1", Partition: 1, Inserted: 1}})
	v.Observe(Member{Group: "order-analytics", Analytics: true, Event: consumer.Assigned{Member: "analytics-1", At: now, Owned: []int32{0}}})
	v.Observe(Stopping{Member: "consumer-2", After: 1})
	v.Observe(Counted{Stored: 1})
	for _, want := range []string{
		"broker    127.0.0.1:9092 (embedded, topic food-orders with 3 partitions)",
		"rebalance: consumer-1 owned [], now owns [0 1 2]",
		"group order-analytics: analytics-1 now owns [0] (the orders group is not affected)",
		"consumer-2 leaves the group (--stop-one-after 1)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("lacks %q:\n%s", want, out.String())
		}
	}
	if line := lastLine(out.String()); !strings.HasPrefix(line, "progress produced 1/100  stored 1  |  p0 0/0  p1 1/1  p2 0/0") ||
		!strings.Contains(line, "consumer-2 stopped: 0") {
		t.Errorf("last line %q", line)
	}
	if strings.Contains(out.String(), "\033") {
		t.Errorf("terminal escapes written to a pipe:\n%q", out.String())
	}
	before := out.String()
	v.Close()
	if out.String() != before {
		t.Errorf("Close after Counted drew again:\n%s", strings.TrimPrefix(out.String(), before))
	}
}

// shownUnowned reports whether the drawn block has partition p's line end
// with no owner, for a rebalance.
func shownUnowned(s string, p int) bool {
	for l := range strings.SplitSeq(s, "\n") {
		if strings.HasPrefix(l, fmt.Sprintf("partition %d ", p)) && strings.HasSuffix(l, "(no owner: rebalancing)") {
			return true
		}
	}
	return false
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}
