package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"foodpipe/internal/demo"
	"foodpipe/internal/semantics"
	"foodpipe/internal/store/dbtest"
)

// `foodpipe demo --semantics` holds a member of each of the three groups
// at its fault point at its first batch, between the two steps its
// semantics orders, kills the three (SIGKILL) at one instant, restarts
// them and counts each group's table: at
// most once has lost orders, at least once has stored some twice, and the
// pipeline's own group has every order once.
func TestTheThreeSemanticsKilledAtOnceLoseDoubleAndHold(t *testing.T) {
	db := dbtest.New(t)
	const orders = 300
	p := start(t, "demo", []string{"DATABASE_URL=" + db, "LOG_LEVEL=warn"},
		"demo", "--semantics", "--orders", "300", "--rate", "200", "--wait", "60s", "--json")
	if code := p.wait(3 * time.Minute); code != 0 {
		t.Fatalf("demo --semantics exited %d", code)
	}
	var s demo.SemanticsSummary
	for line := range strings.Lines(p.Log()) {
		if strings.HasPrefix(line, `{"produced":`) {
			if err := json.Unmarshal([]byte(line), &s); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s.Produced != orders || len(s.Groups) != 3 || len(s.Kills) != 3 {
		t.Fatalf("summary: %+v, want %d orders produced, three groups counted, three members killed", s, orders)
	}
	for _, k := range s.Kills {
		if k.How != "signal: killed" || k.CrashPoint != semantics.CrashPoint(k.Semantics) {
			t.Errorf("kill %+v, want a SIGKILL at %s", k, semantics.CrashPoint(k.Semantics))
		}
	}
	t.Logf("killed within %.3f ms", s.SpreadMS)
	for _, c := range s.Groups {
		t.Logf("%-13s lost %3d  once %3d  twice+ %3d  rows %3d", c.Semantics, c.Lost, c.Once, c.Twice, c.Rows)
		if c.Produced != orders || c.Lost+c.Once+c.Twice != orders {
			t.Errorf("%s: %+v does not account for the %d orders", c.Semantics, c, orders)
		}
	}
	amo, alo, eo := s.Groups[0], s.Groups[1], s.Groups[2]
	if amo.Semantics != semantics.AtMostOnce || amo.Lost < 1 || amo.Twice != 0 {
		t.Errorf("at most once: %+v, want orders lost and none twice", amo)
	}
	if alo.Semantics != semantics.AtLeastOnce || alo.Twice < 1 || alo.Lost != 0 {
		t.Errorf("at least once: %+v, want orders twice and none lost", alo)
	}
	if eo.Semantics != semantics.ExactlyOnce || eo.Once != orders {
		t.Errorf("exactly once: %+v, want every order once", eo)
	}
	// The tables say the same without Count.
	if n := query[int](t, db, "SELECT count(*)::int FROM orders"); n != orders {
		t.Errorf("orders holds %d rows, want %d", n, orders)
	}
	if n := query[int](t, db, "SELECT (count(*) - count(DISTINCT order_id))::int FROM teach_at_least_once"); n < 1 {
		t.Errorf("teach_at_least_once holds no order twice")
	}
	if n := query[int](t, db, "SELECT count(DISTINCT order_id)::int FROM teach_at_most_once"); n >= orders {
		t.Errorf("teach_at_most_once holds %d distinct orders of %d: none lost", n, orders)
	}
}
