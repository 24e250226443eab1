package lab

// The invariants panel: what the pipeline promises, checked against the
// database and the topic as the lab runs.

import (
	"fmt"
	"slices"
	"time"

	"foodpipe/internal/order"
)

// Invariant is one promise and whether it holds now.
type Invariant struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	// Offending names what breaks it: order ids, positions.
	Offending []string `json:"offending,omitempty"`
}

// strikesToFail is how many samples in a row a count must be off before the
// panel turns red: the topic and the tables are read one after the other,
// not at one instant, so a message acknowledged or stored between two reads
// can put a single sample off by a few.
const strikesToFail = 3

// checkInvariants checks the sample against the promises. Call with l.mu held.
func (l *Lab) checkInvariants(s *sample) []Invariant {
	st := &l.st
	return []Invariant{l.balance(s), l.noRepeats(s), st.storedAsSent(s)}
}

// balance: every acknowledged message is stored, dead-lettered, dropped as
// an exact duplicate, or still in flight; nothing else becomes of it.
func (l *Lab) balance(s *sample) Invariant {
	st := &l.st
	b := st.base
	produced := s.acked
	stored := s.tally.Orders - b.tally.Orders
	dead := s.tally.DeadLetters - b.tally.DeadLetters
	// What the consumers' positions passed over that holds no order
	// (aborted transactions' records, their markers) was not handled.
	handled := s.tally.Handled - b.tally.Handled - l.txnSkipped(s)
	dropped := handled - stored - dead
	inFlight := produced - handled
	inv := Invariant{Name: "produced = stored + dead-lettered + duplicates dropped + in flight",
		Detail: fmt.Sprintf("%d = %d + %d + %d + %d", produced, stored, dead, dropped, inFlight)}
	var problems []string
	if dropped < 0 || dropped > st.dupsSent {
		problems = append(problems, fmt.Sprintf("%d duplicates dropped, but %d were sent", dropped, st.dupsSent))
	}
	if inFlight < 0 {
		problems = append(problems, fmt.Sprintf("%d more messages handled than acknowledged", -inFlight))
	}
	if s.viewErr == nil {
		var hwm int64
		for _, p := range s.view.Partitions {
			hwm += p.HighWatermark
		}
		if hwm-b.hwm < s.ackedBefore {
			problems = append(problems, fmt.Sprintf("the topic holds %d messages, %d were acknowledged", hwm-b.hwm, s.ackedBefore))
		}
	}
	if s.dbErr != nil {
		// Unknown rather than broken: the lab reads the tables directly,
		// not through the cut proxy, so this is a real failure to read.
		inv.OK, inv.Detail = st.strike(inv.Name, false), "cannot read the tables: "+s.dbErr.Error()
		return inv
	}
	inv.OK = st.strike(inv.Name, len(problems) == 0)
	if !inv.OK {
		inv.Offending = problems
	}
	return inv
}

// noRepeats: no order stored twice, no message stored as two orders.
func (l *Lab) noRepeats(s *sample) Invariant {
	st := &l.st
	inv := Invariant{Name: "no order stored twice", OK: true, Detail: "no order id and no Kafka position twice in the table"}
	prev := st.snap.Invariants
	if !s.repeatsRead {
		// Checked every few samples: keep the last answer in between.
		if i := slices.IndexFunc(prev, func(v Invariant) bool { return v.Name == inv.Name }); i >= 0 {
			return prev[i]
		}
		return inv
	}
	if len(s.repeats) > 0 {
		inv.OK, inv.Offending, inv.Detail = false, s.repeats, "stored more than once"
	}
	return inv
}

// storedAsSent: every stored order is the one that was produced, byte for
// byte in meaning: the same customer, items, total, status and instant.
func (st *state) storedAsSent(s *sample) Invariant {
	inv := Invariant{Name: "every stored order equals what was produced"}
	if s.storeErr == nil {
		for _, got := range s.stored {
			want, ok := st.sent[got.OrderID]
			if !ok {
				continue
			}
			delete(st.sent, got.OrderID)
			if same(want, got) {
				st.verified++
			} else if len(st.mismatched) < 20 {
				st.mismatched = append(st.mismatched, got.OrderID)
			}
		}
	}
	inv.OK = len(st.mismatched) == 0
	inv.Offending = slices.Clone(st.mismatched)
	inv.Detail = fmt.Sprintf("%d checked against what the producer sent, %d not stored yet", st.verified, len(st.sent))
	return inv
}

// strike counts a failing check; it reports broken only after
// strikesToFail failures in a row.
func (st *state) strike(name string, ok bool) bool {
	if ok {
		st.strikes[name] = 0
		return true
	}
	st.strikes[name]++
	return st.strikes[name] < strikesToFail
}

// same compares two orders field by field; the items through their
// canonical JSON, as the store does; the instants to the microsecond that
// PostgreSQL keeps.
func same(a, b order.Order) bool {
	return a.OrderID == b.OrderID && a.CustomerID == b.CustomerID && a.TotalAmount == b.TotalAmount &&
		a.Status == b.Status && a.CreatedAt.Truncate(time.Microsecond).Equal(b.CreatedAt.Truncate(time.Microsecond)) && string(a.ItemsJSON()) == string(b.ItemsJSON())
}
