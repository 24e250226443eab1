package lab_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"foodpipe/internal/harness"
	"foodpipe/internal/kafka"
	"foodpipe/internal/lab"
)

// The event stream sends a whole snapshot on every tick, the latest first.
func TestTheEventStreamSendsASnapshotEveryTick(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	tl := startLab(t, 1, 20)
	resp, err := http.Get(tl.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	var snaps []lab.Snapshot
	deadline := time.Now().Add(30 * time.Second)
	for len(snaps) < 4 && time.Now().Before(deadline) && sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var s lab.Snapshot
		if err := json.Unmarshal([]byte(data), &s); err != nil {
			t.Fatalf("an event that is not a snapshot: %v: %.200s", err, data)
		}
		snaps = append(snaps, s)
	}
	if len(snaps) < 4 {
		t.Fatalf("%d snapshots in 30 s, want 4 (scan: %v)", len(snaps), sc.Err())
	}
	first, last := snaps[0], snaps[len(snaps)-1]
	if !last.At.After(first.At) {
		t.Errorf("snapshots not in time order: %v then %v", first.At, last.At)
	}
	if last.Producer.Acked <= first.Producer.Acked && first.Producer.Acked == 0 {
		t.Errorf("the producer's count did not move: %d then %d", first.Producer.Acked, last.Producer.Acked)
	}
	if len(last.Lanes) != 3 || len(last.Members) != 1 || len(last.Invariants) != 3 || len(last.Lessons) == 0 {
		t.Errorf("snapshot lacks parts: %d lanes, %d members, %d invariants, %d lessons",
			len(last.Lanes), len(last.Members), len(last.Invariants), len(last.Lessons))
	}
}

// Each action does what it says, as seen in the snapshots; a bad request
// is refused with a status that says why.
func TestEachActionIsSeenInTheSnapshots(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	tl := startLab(t, 2, 20)
	tl.eventually(t, 30*time.Second, "orders stored on every partition", func(s lab.Snapshot) bool {
		return len(s.Lanes) == 3 && !slices.ContainsFunc(s.Lanes, func(l lab.Lane) bool { return l.Rows == 0 })
	})

	t.Run("an invalid order is dead-lettered with its reason", func(t *testing.T) {
		tl.must(t, "/api/send/invalid", `{"reason":"total_mismatch"}`)
		tl.eventually(t, 20*time.Second, "a total_mismatch dead letter", func(s lab.Snapshot) bool { return hasDead(s, "total_mismatch") })
	})
	t.Run("a conflicting duplicate is dead-lettered", func(t *testing.T) {
		tl.must(t, "/api/send/duplicate", `{"conflicting":true}`)
		tl.eventually(t, 20*time.Second, "a conflicting_duplicate dead letter", func(s lab.Snapshot) bool { return hasDead(s, "conflicting_duplicate") })
	})
	t.Run("a dead letter is replayed once", func(t *testing.T) {
		s := tl.state(t)
		i := slices.IndexFunc(s.Dead, func(d lab.Letter) bool { return d.Reason == "total_mismatch" })
		off := s.Dead[i].Offset
		body := `{"offset":` + itoa(off) + `}`
		tl.must(t, "/api/dlq/replay", body)
		if code, got := tl.post(t, "/api/dlq/replay", body); code != http.StatusConflict {
			t.Errorf("a second replay = %d %s, want 409", code, got)
		}
		// Unfixed, it fails again, and its new dead letter names the first.
		tl.eventually(t, 20*time.Second, "the replay's own dead letter", func(s lab.Snapshot) bool {
			return slices.ContainsFunc(s.Dead, func(d lab.Letter) bool { return d.ReplayedFrom != "" })
		})
	})
	t.Run("pausing the producer stops it; an exact duplicate is dropped", func(t *testing.T) {
		tl.must(t, "/api/producer", `{"rate":20,"paused":true}`)
		tl.must(t, "/api/send/duplicate", `{"conflicting":false}`)
		// Nothing left in flight, one duplicate dropped, nothing else.
		done := regexp.MustCompile(`\+ 1 \+ 0$`)
		s := tl.eventually(t, 20*time.Second, "the duplicate dropped and nothing in flight", func(s lab.Snapshot) bool {
			return done.MatchString(s.Invariants[0].Detail)
		})
		time.Sleep(time.Second) // the producer must stay still: this is the check, not a wait
		if now := tl.state(t).Producer.Acked; now != s.Producer.Acked {
			t.Errorf("the paused producer went on: %d then %d", s.Producer.Acked, now)
		}
	})
	t.Run("setting the rate restarts the producer", func(t *testing.T) {
		before := tl.state(t).Producer.Acked
		tl.must(t, "/api/producer", `{"rate":50,"paused":false}`)
		tl.eventually(t, 10*time.Second, "orders at the new rate", func(s lab.Snapshot) bool {
			return s.Producer.Rate == 50 && !s.Producer.Paused && s.Producer.Acked > before+20
		})
	})
	t.Run("the analytics group falls behind alone when stopped, and catches up", func(t *testing.T) {
		lagOf := func(s lab.Snapshot) (n int64) {
			for _, l := range s.Lanes {
				n += l.Lag
			}
			return n
		}
		tl.eventually(t, 30*time.Second, "analytics running and counting", func(s lab.Snapshot) bool {
			return s.Analytics.Status == "running" && s.Analytics.Counted > 0 && len(s.Analytics.Members) == 1
		})
		if code, got := tl.post(t, "/api/analytics/start", ``); code != http.StatusConflict {
			t.Errorf("starting a running analytics member = %d %s, want 409", code, got)
		}
		tl.must(t, "/api/analytics/stop", ``)
		s := tl.eventually(t, 30*time.Second, "analytics stopped and 100 orders behind", func(s lab.Snapshot) bool {
			return s.Analytics.Status == "stopped" && s.Analytics.Lag >= 100
		})
		if lag := lagOf(s); lag > s.Analytics.Lag/2 {
			t.Errorf("the orders group's lag is %d while analytics is %d behind: it should keep up", lag, s.Analytics.Lag)
		}
		tl.must(t, "/api/analytics/start", ``)
		tl.eventually(t, 30*time.Second, "analytics caught up", func(s lab.Snapshot) bool {
			return s.Analytics.Status == "running" && s.Analytics.Lag < 50 && s.Analytics.Counted > 0
		})
	})
	t.Run("a consumer added joins the group and takes a partition", func(t *testing.T) {
		tl.must(t, "/api/consumers", ``)
		tl.eventually(t, 30*time.Second, "consumer-3 owning a partition", func(s lab.Snapshot) bool {
			m := member(s, "consumer-3")
			return m != nil && len(m.Owns) == 1 && s.Rebalances >= 2
		})
	})
	t.Run("a paused consumer is paused, and resumes", func(t *testing.T) {
		tl.must(t, "/api/consumers/consumer-3/pause", ``)
		tl.eventually(t, 5*time.Second, "consumer-3 paused and silent", func(s lab.Snapshot) bool {
			m := member(s, "consumer-3")
			return m.Status == "paused" && !m.Answering
		})
		tl.must(t, "/api/consumers/consumer-3/resume", ``)
		tl.eventually(t, 10*time.Second, "consumer-3 answering again", func(s lab.Snapshot) bool {
			m := member(s, "consumer-3")
			return m.Status == "running" && m.Answering
		})
	})
	t.Run("a stopped consumer exits cleanly, a killed one by the signal", func(t *testing.T) {
		tl.must(t, "/api/consumers/consumer-3/stop", ``)
		tl.must(t, "/api/consumers/consumer-2/kill", ``)
		tl.eventually(t, 20*time.Second, "both ended", func(s lab.Snapshot) bool {
			a, b := member(s, "consumer-3"), member(s, "consumer-2")
			return a.Status == "exited" && a.Exit == "exit 0" && b.Status == "exited" && strings.Contains(b.Exit, "killed")
		})
		if code, _ := tl.post(t, "/api/consumers/consumer-2/kill", ``); code != http.StatusNotFound {
			t.Errorf("killing an ended consumer = %d, want 404", code)
		}
	})
	t.Run("a cut database opens the breakers, which close after", func(t *testing.T) {
		tl.must(t, "/api/db/cut", `{"seconds":4}`)
		if code, _ := tl.post(t, "/api/db/cut", `{"seconds":4}`); code != http.StatusConflict {
			t.Errorf("a second cut during the first = %d, want 409", code)
		}
		tl.eventually(t, 20*time.Second, "a breaker open", func(s lab.Snapshot) bool {
			return s.Faults.DBCut && slices.ContainsFunc(s.Members, func(m lab.Member) bool { return m.BreakerOpen })
		})
		tl.eventually(t, 40*time.Second, "every breaker closed and ready", func(s lab.Snapshot) bool {
			return !s.Faults.DBCut && !slices.ContainsFunc(s.Members, func(m lab.Member) bool {
				return m.Status == "running" && (m.BreakerOpen || !m.Ready)
			})
		})
	})
	t.Run("the broker restarts, and a second restart meanwhile is refused", func(t *testing.T) {
		tl.must(t, "/api/broker/restart", `{"seconds":1}`)
		if code, _ := tl.post(t, "/api/broker/restart", `{"seconds":1}`); code != http.StatusConflict {
			t.Errorf("a second restart = %d, want 409", code)
		}
		tl.eventually(t, 60*time.Second, "the broker back and orders flowing", func(s lab.Snapshot) bool {
			return !s.Faults.BrokerRestarting && s.Error == "" &&
				slices.ContainsFunc(s.Timeline, func(e lab.Event) bool { return strings.Contains(e.Text, "broker is back") })
		})
	})
	t.Run("bad requests are refused with the reason", func(t *testing.T) {
		for _, c := range []struct{ path, body string }{
			{"/api/send/invalid", `{"reason":"bad_vibes"}`},
			{"/api/send/invalid", `{"reason":`},
			{"/api/send/invalid", `{"reason":"not_json","extra":1}`},
			{"/api/producer", `{"rate":-1}`},
			{"/api/producer", `{"rate":1e9}`},
			{"/api/producer", `{"rate":5}{"rate":9}`},
			{"/api/db/cut", `{"seconds":0}`},
			{"/api/broker/restart", `{"seconds":600}`},
			{"/api/consumers/consumer-1/explode", ``},
		} {
			if code, got := tl.post(t, c.path, c.body); code != http.StatusBadRequest || !strings.Contains(got, "error") {
				t.Errorf("POST %s %s = %d %s, want 400 with the error", c.path, c.body, code, got)
			}
		}
		if code, _ := tl.post(t, "/api/consumers/consumer-99/kill", ``); code != http.StatusNotFound {
			t.Errorf("an unknown consumer = %d, want 404", code)
		}
		if code, _ := tl.post(t, "/api/dlq/replay", `{"offset":12345}`); code != http.StatusNotFound {
			t.Errorf("an unknown dead letter = %d, want 404", code)
		}
	})
	tl.eventually(t, 30*time.Second, "every invariant holding", allOK)
}

// A lane never shows more rows in PostgreSQL than its partition holds, even
// at 200 orders a second: the rows are read before the high watermark,
// which only grows.
func TestALaneNeverShowsMoreRowsThanItsPartitionHolds(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	tl := startLab(t, 2, 200)
	var snaps, withRows int
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(150 * time.Millisecond) {
		s := tl.state(t)
		snaps++
		for _, l := range s.Lanes {
			if l.Rows > l.HighWatermark {
				t.Fatalf("partition %d shows %d rows over a high watermark of %d", l.Partition, l.Rows, l.HighWatermark)
			}
			if l.Rows > 0 {
				withRows++
			}
		}
	}
	if withRows < 20 {
		t.Fatalf("only %d lanes with rows in %d snapshots: the check saw too little", withRows, snaps)
	}
	t.Logf("%d snapshots, %d lanes with rows, none above its high watermark", snaps, withRows)
}

// On the user's cluster the lab runs as on its own broker, but does not
// offer to restart it.
func TestOnTheUsersClusterTheBrokerIsNotRestarted(t *testing.T) {
	b, err := kafka.StartBroker(kafka.BrokerOptions{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	tl := startLabOn(t, harness.ExternalBroker, b.Addr(), 1, 20)
	s := tl.eventually(t, 30*time.Second, "orders stored", func(s lab.Snapshot) bool {
		return len(s.Lanes) == 3 && slices.ContainsFunc(s.Lanes, func(l lab.Lane) bool { return l.Rows > 0 })
	})
	if tl.BrokerAddr() != b.Addr() {
		t.Errorf("the lab uses broker %s, want the user's %s", tl.BrokerAddr(), b.Addr())
	}
	if s.Faults.CanRestartBroker {
		t.Error("the page offers to restart the user's broker")
	}
	if code, got := tl.post(t, "/api/broker/restart", `{"seconds":1}`); code != http.StatusConflict || !strings.Contains(got, "user's cluster") {
		t.Errorf("restart of the user's broker = %d %s, want 409 saying why", code, got)
	}
}

// The guard refuses cross-site actions, DNS rebinding, other methods, and
// requests without the token when one is needed. A refused request never
// reaches the lab, so a lab that was never started serves these.
func TestTheGuardRefuses(t *testing.T) {
	const addr = "127.0.0.1:8080"
	local := (&lab.Lab{}).Handler(lab.Access{Addr: addr})
	open := (&lab.Lab{}).Handler(lab.Access{Addr: "0.0.0.0:8080", Token: "s3cret"})
	// POST /api/producer with a rate out of range gets past the guard and
	// is refused by the lab itself (400): the sign that the guard let it by.
	const passed = http.StatusBadRequest
	cases := []struct {
		name   string
		h      http.Handler
		method string
		path   string
		host   string
		origin string
		token  string
		cookie string
		want   int
	}{
		{"an action from the lab's page passes", local, "POST", "/api/producer", addr, "http://" + addr, "", "", passed},
		{"an action named through localhost passes", local, "POST", "/api/producer", "localhost:8080", "http://localhost:8080", "", "", passed},
		{"an action from another site is refused", local, "POST", "/api/producer", addr, "http://evil.example", "", "", 403},
		{"an action with no Origin is refused", local, "POST", "/api/producer", addr, "", "", "", 403},
		{"an action from the lab's port on another host is refused", local, "POST", "/api/producer", addr, "http://127.0.0.1:9999", "", "", 403},
		{"a rebound name is refused for actions", local, "POST", "/api/producer", "evil.example:8080", "http://evil.example:8080", "", "", 403},
		{"a rebound name is refused for the stream", local, "GET", "/events", "evil.example:8080", "", "", "", 403},
		{"a rebound name is refused for the state", local, "GET", "/state", "evil.example:8080", "", "", "", 403},
		{"an action by GET is refused", local, "GET", "/api/producer", addr, "", "", "", 405},
		{"an action by PUT is refused", local, "PUT", "/api/producer", addr, "http://" + addr, "", "", 405},
		{"off loopback, no token is refused", open, "GET", "/state", "lab.example:8080", "", "", "", 401},
		{"off loopback, a wrong token is refused", open, "GET", "/state", "lab.example:8080", "", "guess", "", 401},
		{"off loopback, an action without the token is refused", open, "POST", "/api/producer", "lab.example:8080", "http://lab.example:8080", "", "", 401},
		{"off loopback, the token in a header passes", open, "GET", "/state", "lab.example:8080", "", "s3cret", "", 200},
		{"off loopback, the token in the cookie passes", open, "POST", "/api/producer", "lab.example:8080", "http://lab.example:8080", "", "s3cret", passed},
		{"off loopback, the token cookie does not excuse another site", open, "POST", "/api/producer", "lab.example:8080", "http://evil.example", "", "s3cret", 403},
		{"off loopback, the token in the address sets the cookie", open, "GET", "/?token=s3cret", "lab.example:8080", "", "", "", 303},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, "http://"+c.host+c.path, strings.NewReader(`{"rate":-1}`))
			req.Host = c.host
			if c.origin != "" {
				req.Header.Set("Origin", c.origin)
			}
			if c.token != "" {
				req.Header.Set("X-Lab-Token", c.token)
			}
			if c.cookie != "" {
				req.AddCookie(&http.Cookie{Name: "foodpipe_lab_token", Value: c.cookie})
			}
			rec := httptest.NewRecorder()
			c.h.ServeHTTP(rec, req)
			if rec.Code != c.want {
				t.Fatalf("%s %s (Host %s, Origin %q) = %d %s, want %d", c.method, c.path, c.host, c.origin, rec.Code, rec.Body, c.want)
			}
			if c.want == 303 {
				if ck := rec.Result().Cookies(); len(ck) != 1 || ck[0].Value != "s3cret" || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode {
					t.Errorf("cookies %v, want the token, HttpOnly, SameSite=Strict", ck)
				}
			}
		})
	}
}

// An action's body is one JSON object and nothing after it but whitespace:
// {"rate":5}{"rate":9} is refused, not read as its first half. The lab here
// was never started: a body refused is refused before any action runs, and
// one that gets by is refused by the action (a rate out of range, a
// consumer that does not run), which tells the two apart.
func TestABodyWithMoreAfterItsJSONIsRefused(t *testing.T) {
	const addr = "127.0.0.1:8080"
	h := (&lab.Lab{}).Handler(lab.Access{Addr: addr})
	const trailing = "one JSON object, and nothing after it"
	for _, c := range []struct {
		name, path, body string
		code             int
		says             string
	}{
		{"a second object is refused", "/api/producer", `{"rate":-1}{"rate":9}`, 400, trailing},
		{"a second object after a space is refused", "/api/producer", `{"rate":-1} {"rate":9}`, 400, trailing},
		{"a closing brace too many is refused", "/api/producer", `{"rate":-1}}`, 400, trailing},
		{"an array after the object is refused", "/api/producer", `{"rate":-1}[]`, 400, trailing},
		{"a word after the object is refused", "/api/producer", `{"rate":-1} ok`, 400, trailing},
		{"a second object to an action without parameters is refused", "/api/consumers/consumer-1/stop", `{}{}`, 400, trailing},
		{"whitespace after the object is no more", "/api/producer", "{\"rate\":-1} \r\n\t", 400, "the rate must be"},
		{"an action without parameters takes an empty body", "/api/consumers/consumer-1/stop", ``, 404, "no such consumer"},
		{"an action without parameters takes an empty object", "/api/consumers/consumer-1/stop", `{}`, 404, "no such consumer"},
		{"an action without parameters refuses a field", "/api/consumers/consumer-1/stop", `{"id":"consumer-2"}`, 400, "unknown field"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "http://"+addr+c.path, strings.NewReader(c.body))
			req.Header.Set("Origin", "http://"+addr)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var reply struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil {
				t.Fatalf("the reply is not JSON: %v: %s", err, rec.Body)
			}
			if rec.Code != c.code || !strings.Contains(reply.Error, c.says) {
				t.Errorf("POST %s %q = %d %q, want %d saying %q", c.path, c.body, rec.Code, reply.Error, c.code, c.says)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:1": true, "[::1]:8080": true, "127.1.2.3:80": true,
		"0.0.0.0:8080": false, ":8080": false, "192.168.1.4:8080": false, "lab.example:80": false, "nonsense": false,
	} {
		if got := lab.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func hasDead(s lab.Snapshot, reason string) bool {
	return slices.ContainsFunc(s.Dead, func(d lab.Letter) bool { return d.Reason == reason })
}

func member(s lab.Snapshot, id string) *lab.Member {
	for i := range s.Members {
		if s.Members[i].ID == id {
			return &s.Members[i]
		}
	}
	return nil
}

func allOK(s lab.Snapshot) bool {
	return len(s.Invariants) > 0 && !slices.ContainsFunc(s.Invariants, func(i lab.Invariant) bool { return !i.OK })
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
