package consumer

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"foodpipe/internal/store/dbtest"
)

// A person reads a member's log to follow a rebalance: each change of what
// it owns is one line naming the partitions that moved, and the rounds of
// the cooperative protocol that change nothing for it are not logged.
func TestARebalanceIsLoggedOncePerChange(t *testing.T) {
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
}
