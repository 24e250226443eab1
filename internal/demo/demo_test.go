package demo

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/consumer"
	"foodpipe/internal/store/dbtest"
)

func TestJudgePassesOnlyEveryOrderStoredOnceAndCountedOnce(t *testing.T) {
	stored := Summary{Produced: 10, Stored: 10}
	tests := []struct {
		name    string
		s       Summary
		orders  int
		wantErr error
	}{
		{"every order stored passes", stored, 10, nil},
		{"an order missing fails", Summary{Produced: 10, Stored: 9, Missing: 1}, 10, ErrIncomplete},
		{"fewer orders produced than asked fails", Summary{Produced: 9, Stored: 9}, 10, ErrIncomplete},
		{"analytics that counted every order, alike, passes", withAnalytics(stored, AnalyticsSummary{Counted: 10, Checked: 10}), 10, nil},
		{"analytics that counted fewer orders fails", withAnalytics(stored, AnalyticsSummary{Counted: 8}), 10, ErrAnalyticsDiffer},
		{"analytics whose aggregates differ fails", withAnalytics(stored, AnalyticsSummary{Counted: 10, Differences: []string{"minute 12:00"}}), 10, ErrAnalyticsDiffer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Judge(tt.s, tt.orders); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("Judge = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func withAnalytics(s Summary, a AnalyticsSummary) Summary {
	s.Analytics = &a
	return s
}

// The demo tells its watcher what happens, in order: it started, the
// members joined, each order was acknowledged, one member was stopped, the
// orders were counted; and its summary agrees.
func TestRunTellsWhatHappensAndSumsItUp(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	cfg, err := config.Load(func(k string) (string, bool) {
		v, ok := map[string]string{"DATABASE_URL": dbtest.New(t), "KAFKA_PARTITIONS": "3", "PRODUCER_RATE": "100", "LOG_LEVEL": "warn"}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []Event
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := Run(context.Background(), Options{Config: cfg, UserDatabase: true, Orders: 30, Consumers: 2, Wait: 30 * time.Second,
		StopOneAfter: 10, Log: log, ClientLog: log, Observe: func(e Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := Judge(s, 30); err != nil {
		t.Errorf("Judge: %v (summary %+v)", err, s)
	}
	mu.Lock()
	defer mu.Unlock()
	if st, ok := events[0].(Started); !ok || st.Partitions != 3 || len(st.Members) != 2 {
		t.Fatalf("first event %#v, want Started with 3 partitions and 2 members", events[0])
	}
	acked, stopping, counted, joined := 0, 0, 0, map[string]bool{}
	for i, e := range events {
		switch e := e.(type) {
		case Acked:
			acked++
		case Stopping:
			stopping++
			if e.Member != "consumer-2" || e.After != 10 || acked != 10 {
				t.Errorf("stopping %+v after %d orders acknowledged", e, acked)
			}
		case Counted:
			counted++
			if e.Stored != 30 || e.Missing != 0 {
				t.Errorf("counted %+v", e)
			}
		case Member:
			if a, ok := e.Event.(consumer.Assigned); ok && len(a.Owned) > 0 {
				joined[a.Member] = true
			}
		case Started:
			if i > 0 {
				t.Errorf("Started again at event %d", i)
			}
		}
	}
	if acked != 30 || stopping != 1 || counted != 1 || len(joined) != 2 {
		t.Errorf("%d acknowledged, %d stopped, %d counted, %v joined; want 30, 1, 1 and both members", acked, stopping, counted, joined)
	}
	if s.Produced != 30 || s.Stored != 30 || len(s.Consumers) != 2 {
		t.Errorf("summary %+v", s)
	}
}

// With a notifier beside the orders group, every order is emailed (or its
// address refused), once each, to a Mailpit the demo starts itself.
func TestRunWithANotifierEmailsEveryOrderOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	cfg, err := config.Load(func(k string) (string, bool) {
		v, ok := map[string]string{"DATABASE_URL": dbtest.New(t), "KAFKA_PARTITIONS": "3", "PRODUCER_RATE": "200", "LOG_LEVEL": "warn"}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := Run(context.Background(), Options{Config: cfg, UserDatabase: true, Orders: 200, Consumers: 1, Wait: 30 * time.Second,
		Notify: true, TempDir: t.TempDir(), Log: log, ClientLog: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := Judge(s, 200); err != nil {
		t.Errorf("Judge: %v (summary %+v)", err, s)
	}
	n := s.Notify
	if n == nil || !n.Started || n.Sent+n.Refused != 200 || n.Received != int(n.Sent) || n.Distinct != int(n.Sent) || n.Duplicates != 0 || n.InDoubt != 0 {
		t.Errorf("notify summary %+v, want 200 settled, each sent received once, none in doubt", n)
	}
}
