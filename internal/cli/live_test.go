package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"foodpipe/internal/consumer"
)

// The group's first rebalance, as the demo meets it before any order is
// produced: consumer-1 took all three partitions, then gave partition 2 up
// for consumer-2, which has not received it yet. The view still shows
// partition 2, and says why it has no owner.
func TestLiveViewShowsEveryPartitionDuringARebalance(t *testing.T) {
	nothing := func() map[int32]int64 { return map[int32]int64{} }
	rebalance := func(v *liveView) {
		now := time.Now()
		v.observe(consumer.Assigned{Member: "consumer-1", At: now, Owned: []int32{0, 1, 2}})
		v.observe(consumer.Assigned{Member: "consumer-1", At: now, Owned: []int32{0, 1}})
	}
	t.Run("on a terminal every partition has a line, the unowned one says so", func(t *testing.T) {
		var out syncBuffer
		v := newLiveView(&out, true, 100, 3, nothing, []string{"consumer-1", "consumer-2"})
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
		var out syncBuffer
		v := newLiveView(&out, false, 100, 3, nothing, []string{"consumer-1", "consumer-2"})
		rebalance(v)
		v.tick()
		line := lastLine(out.String())
		if !strings.Contains(line, "p0 0/0  p1 0/0  p2 0/0") || !strings.Contains(line, "no owner (rebalancing): [2]") {
			t.Errorf("progress line %q", line)
		}
	})
	t.Run("with every member stopped, no partition is said to be rebalancing", func(t *testing.T) {
		var out syncBuffer
		v := newLiveView(&out, true, 100, 3, nothing, []string{"consumer-1"})
		v.observe(consumer.Assigned{Member: "consumer-1", At: time.Now(), Owned: []int32{0, 1, 2}})
		v.stop("consumer-1", "stopped by the test")
		v.observe(consumer.Assigned{Member: "consumer-1", At: time.Now(), Owned: []int32{}})
		v.tick()
		if strings.Contains(out.String(), "rebalancing") || !strings.Contains(out.String(), "(no owner: no member running)") {
			t.Errorf("partitions of a group with no member running:\n%s", out.String())
		}
	})
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
