package lab_test

import (
	"net/http"
	"testing"
	"time"

	"foodpipe/internal/lab"
)

// The notifier's actions refuse what cannot be done, saying so: a kill
// before it runs, a second start, a kill with the producer paused (it would
// never have a batch in hand), a kill or a start while a round is going. A
// round then ends final, its duplicates at the mail server as many as the
// sends in doubt, none elsewhere, and the button works again.
func TestTheNotifierActionsRefuseWhatCannotBeDone(t *testing.T) {
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
	refused("/api/notify/kill", http.StatusConflict) // nothing to kill yet
	tl.must(t, "/api/notify/start", ``)
	refused("/api/notify/start", http.StatusConflict) // running already
	tl.eventually(t, 30*time.Second, "emails at the mail server", func(s lab.Snapshot) bool {
		return s.Notify.Status == "running" && s.Notify.Pid > 0 && s.Notify.Counts.Received > 0
	})
	tl.must(t, "/api/producer", `{"rate":50,"paused":true}`)
	refused("/api/notify/kill", http.StatusConflict) // no batch would ever come
	tl.must(t, "/api/producer", `{"rate":50,"paused":false}`)
	tl.must(t, "/api/notify/kill", ``)
	refused("/api/notify/kill", http.StatusConflict) // a round is going
	refused("/api/notify/start", http.StatusConflict)
	s := tl.eventually(t, 2*time.Minute, "the round final", func(s lab.Snapshot) bool {
		return s.Notify.Round != nil && (s.Notify.Round.Final || s.Notify.Round.Error != "")
	})
	r := s.Notify.Round
	if r.Error != "" || s.Notify.Status != "final" || r.KilledAt.IsZero() || r.Why == "" {
		t.Fatalf("the round ended %s: %+v", s.Notify.Status, r)
	}
	if r.Unrecorded < 1 || int64(r.Duplicates) != r.Resent || r.Duplicates < 1 || r.Elsewhere != 0 {
		t.Errorf("%d sent and not recorded, %d sent again in doubt, %d duplicates at the mail server, %d elsewhere: want at least 1, the two equal, none elsewhere",
			r.Unrecorded, r.Resent, r.Duplicates, r.Elsewhere)
	}
	tl.must(t, "/api/notify/kill", ``)
}
