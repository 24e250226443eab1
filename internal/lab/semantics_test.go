package lab_test

import (
	"net/http"
	"testing"
	"time"

	"foodpipe/internal/lab"
)

// The delivery-semantics actions refuse what cannot be done, saying so:
// a kill before the teaching groups run, a second start, a kill with the
// producer paused (no member would ever have a batch in hand), a kill
// while a round is going. A round then ends with final counts that add up.
func TestTheSemanticsActionsRefuseWhatCannotBeDone(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	tl := startLab(t, 1, 50)
	refused := func(path string, want int) {
		t.Helper()
		if code, got := tl.post(t, path, ``); code != want {
			t.Errorf("POST %s = %d %s, want %d", path, code, got, want)
		}
	}
	refused("/api/semantics/kill", http.StatusConflict) // nothing to kill yet
	tl.must(t, "/api/semantics/start", ``)
	refused("/api/semantics/start", http.StatusConflict) // running already
	tl.eventually(t, 30*time.Second, "the teaching members running and the consumer owning partitions", func(s lab.Snapshot) bool {
		return s.Semantics.Status == "running" && s.Semantics.Members[0].Pid > 0 && s.Semantics.Members[1].Pid > 0 &&
			len(s.Members) == 1 && len(s.Members[0].Owns) == 3
	})
	tl.must(t, "/api/producer", `{"rate":50,"paused":true}`)
	refused("/api/semantics/kill", http.StatusConflict) // no batch would ever come
	tl.must(t, "/api/producer", `{"rate":50,"paused":false}`)
	tl.must(t, "/api/semantics/kill", ``)
	refused("/api/semantics/kill", http.StatusConflict) // a round is going
	refused("/api/semantics/start", http.StatusConflict)
	s := tl.eventually(t, 2*time.Minute, "the round's counts final", func(s lab.Snapshot) bool {
		return s.Semantics.Round != nil && (s.Semantics.Round.Final || s.Semantics.Round.Error != "")
	})
	r := s.Semantics.Round
	if r.Error != "" || s.Semantics.Status != "final" || len(r.Groups) != 3 {
		t.Fatalf("the round ended %s: %+v", s.Semantics.Status, r)
	}
	if r.SpreadUS < 0 || r.SpreadUS > 1e6 || r.KilledAt.IsZero() {
		t.Errorf("the three killed at %v within %.0f µs: want one instant", r.KilledAt, r.SpreadUS)
	}
	for _, g := range r.Groups {
		if g.Produced < 1 || g.Lost+g.Once+g.Twice != g.Produced || g.Why == "" {
			t.Errorf("%s: %+v does not account for its orders, or says not why", g.Semantics, g)
		}
	}
	if m := s.Semantics.Members[2]; m.ID != "consumer-1" || m.Pid != s.Members[0].Pid {
		t.Errorf("the orders group's member is %+v, want the lab's consumer-1 (pid %d) started again", m, s.Members[0].Pid)
	}
	// Final, the button works again.
	tl.must(t, "/api/semantics/kill", ``)
}
