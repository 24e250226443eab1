package consumer

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"foodpipe/internal/store/dbtest"
	"foodpipe/internal/telemetry"
)

// A person reads a member's log to follow a rebalance: each change of what
// it owns is one line naming the partitions that moved, and the rounds of
// the cooperative protocol that change nothing for it are not logged.
func TestARebalanceIsLoggedOncePerChange(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	c := newCluster(t, 3)
	st := dbtest.NewStore(t)
	var first, second logs
	a, _ := member(t, c, st, "first", &first)
	eventually(t, "first owns every partition", func() bool { return len(a.Assigned()) == 3 })
	b, _ := member(t, c, st, "second", &second)
	eventually(t, "the partitions shared", func() bool {
		return len(a.Assigned()) > 0 && len(b.Assigned()) > 0 && len(a.Assigned())+len(b.Assigned()) == 3
	})

	type line struct {
		Msg        string  `json:"msg"`
		Partitions []int32 `json:"partitions"`
		Owned      []int32 `json:"owned"`
	}
	changes := func(l *logs) []line {
		var out []line
		for _, s := range strings.Split(strings.TrimSpace(l.String()), "\n") {
			var ln line
			if err := json.Unmarshal([]byte(s), &ln); err != nil {
				t.Fatalf("%v: %s", err, s)
			}
			if strings.HasPrefix(ln.Msg, "partitions ") {
				if len(ln.Partitions) == 0 {
					t.Errorf("a rebalance line with no partitions: %s", s)
				}
				out = append(out, ln)
			}
		}
		return out
	}
	got := changes(&first)
	if len(got) != 2 || got[0].Msg != "partitions assigned" || got[1].Msg != "partitions revoked" ||
		!slices.Equal(got[1].Owned, a.Assigned()) {
		t.Errorf("first's rebalance lines %+v, want one assignment of all three and one revocation leaving %v", got, a.Assigned())
	}
	got = changes(&second)
	if len(got) != 1 || got[0].Msg != "partitions assigned" || !slices.Equal(got[0].Partitions, b.Assigned()) {
		t.Errorf("second's rebalance lines %+v, want one assignment of %v", got, b.Assigned())
	}
	// Each member says on /metrics what it owns, and since when: the
	// partition that moved was given to second after first had its own.
	for _, m := range []*Consumer{a, b} {
		if n := testutil.CollectAndCount(m.cfg.Metrics.PartitionOwned); n != len(m.Assigned()) {
			t.Errorf("%s has %d foodpipe_partition_owned_since_seconds series, owns %v", m.cfg.ID, n, m.Assigned())
		}
	}
	since := func(m *Consumer, p int32) float64 {
		return testutil.ToFloat64(m.cfg.Metrics.PartitionOwned.WithLabelValues(telemetry.Partition(p)))
	}
	if a0, b0 := since(a, a.Assigned()[0]), since(b, b.Assigned()[0]); !(b0 > a0) {
		t.Errorf("second's partition owned since %v, not after first's %v", b0, a0)
	}
}
