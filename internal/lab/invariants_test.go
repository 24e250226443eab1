package lab

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"foodpipe/internal/config"
	"foodpipe/internal/inspect"
	"foodpipe/internal/order"
	"foodpipe/internal/store"
)

// newTestLab is a lab's state alone, for checking the invariants without a
// pipeline.
func newTestLab() *Lab {
	return &Lab{st: newState(config.Config{Topic: "t", Group: "g"}, true)}
}

func topic(hwm ...int64) inspect.Group {
	var v inspect.Group
	for i, h := range hwm {
		v.Partitions = append(v.Partitions, inspect.Partition{Partition: int32(i), HighWatermark: h})
	}
	return v
}

// The balance holds while every message is accounted for, and turns red,
// naming the problem, only when a count stays off for strikesToFail samples.
func TestTheBalanceTurnsRedWhenAMessageIsUnaccounted(t *testing.T) {
	for _, c := range []struct {
		name    string
		acked   int64
		dups    int64
		tally   store.Tally
		view    inspect.Group
		ok      bool
		problem string
	}{
		{"all stored", 10, 0, store.Tally{Orders: 10, Handled: 10}, topic(4, 6), true, ""},
		{"some in flight, one dead, one duplicate dropped", 12, 1, store.Tally{Orders: 8, DeadLetters: 1, Handled: 10}, topic(6, 6), true, ""},
		{"more dropped than duplicates sent", 10, 0, store.Tally{Orders: 9, Handled: 10}, topic(5, 5), false, "1 duplicates dropped, but 0 were sent"},
		{"more handled than acknowledged", 10, 0, store.Tally{Orders: 11, Handled: 11}, topic(6, 5), false, "1 more messages handled than acknowledged"},
		{"an acknowledged message missing from the topic", 10, 0, store.Tally{Orders: 9, Handled: 9}, topic(4, 5), false, "the topic holds 9 messages, 10 were acknowledged"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newTestLab()
			l.st.dupsSent = c.dups
			s := &sample{acked: c.acked, ackedBefore: c.acked, tally: c.tally, view: c.view}
			var inv Invariant
			for i := range strikesToFail {
				inv = l.balance(s)
				if i < strikesToFail-1 && !inv.OK {
					t.Fatalf("red after %d sample(s): one sample off is a race between reads, not a break", i+1)
				}
			}
			if inv.OK != c.ok {
				t.Fatalf("OK = %v after %d samples (%s), want %v", inv.OK, strikesToFail, inv.Detail, c.ok)
			}
			if !c.ok && !slices.ContainsFunc(inv.Offending, func(p string) bool { return strings.Contains(p, c.problem) }) {
				t.Errorf("offending %q, want %q", inv.Offending, c.problem)
			}
			if c.ok {
				// And a good sample clears the strikes.
				if inv = l.balance(s); !inv.OK {
					t.Errorf("a good sample reads red: %v", inv)
				}
			}
		})
	}
}

// An order stored otherwise than it was produced turns the panel red with
// its id, and it stays red.
func TestAStoredOrderThatDiffersIsNamed(t *testing.T) {
	l := newTestLab()
	gen := order.NewGenerator(9, nil)
	a, b := gen.Next(), gen.Next()
	l.st.sentOrder(a)
	l.st.sentOrder(b)
	changed := b
	changed.TotalAmount++
	inv := l.st.storedAsSent(&sample{stored: []order.Order{a, changed}})
	if inv.OK || !slices.Equal(inv.Offending, []string{b.OrderID}) {
		t.Fatalf("got %+v, want red naming %s", inv, b.OrderID)
	}
	if inv = l.st.storedAsSent(&sample{}); inv.OK {
		t.Error("the panel turned green again: a broken promise stays broken")
	}
	if !strings.HasPrefix(inv.Detail, "1 checked") {
		t.Errorf("detail %q, want the one good order counted", inv.Detail)
	}
}

func TestAnOrderStoredTwiceIsNamed(t *testing.T) {
	l := newTestLab()
	if inv := l.noRepeats(&sample{repeatsRead: true}); !inv.OK {
		t.Fatalf("no repeats reads red: %+v", inv)
	}
	inv := l.noRepeats(&sample{repeatsRead: true, repeats: []string{"message 0/7"}})
	if inv.OK || !slices.Equal(inv.Offending, []string{"message 0/7"}) {
		t.Fatalf("got %+v, want red naming message 0/7", inv)
	}
	// Between the samples that look, the last answer stands.
	l.st.snap.Invariants = []Invariant{inv}
	if again := l.noRepeats(&sample{}); again.OK {
		t.Error("a sample that did not look cleared the red")
	}
}

// A database that cannot be read is not taken for a balance that holds.
func TestAnUnreadableDatabaseIsNotGreenForLong(t *testing.T) {
	l := newTestLab()
	s := &sample{dbErr: errors.New("connection refused")}
	var inv Invariant
	for range strikesToFail {
		inv = l.balance(s)
	}
	if inv.OK || !strings.Contains(inv.Detail, "connection refused") {
		t.Fatalf("got %+v, want red with the reason", inv)
	}
}
