package store_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"foodpipe/internal/order"
	"foodpipe/internal/store"
	"foodpipe/internal/store/dbtest"
)

// The lab's audit reads what a batch wrote: the counts in one snapshot, the
// orders as stored, and any order or message stored twice.
func TestAudit(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	st := dbtest.NewStore(t)
	start := time.Now().Add(-time.Second)
	// Three orders at offsets 0..2 and a dead letter at offset 3: four
	// messages handled, offsets stored up to 4.
	b := store.Batch{Group: "g", Rows: rows(0, "A1", "A2", "A3"), Offsets: offsets(0, 4),
		Dead: []store.DeadLetter{{Scope: "orders", Topic: "orders", Offset: 3, Reason: "not_json", Error: "x", Value: []byte("x"), FailedAt: time.Now()}}}
	if _, err := st.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}

	t.Run("Tally counts orders, dead letters and handled messages together", func(t *testing.T) {
		got, err := st.Tally(ctx, "g")
		if want := (store.Tally{Orders: 3, DeadLetters: 1, Handled: 4}); err != nil || got != want {
			t.Errorf("Tally = %+v, %v, want %+v", got, err, want)
		}
		other, err := st.Tally(ctx, "other")
		if want := (store.Tally{Orders: 3}); err != nil || other != want {
			t.Errorf("Tally of another group = %+v, %v, want %+v (orders are not a group's)", other, err, want)
		}
	})
	t.Run("Orders reads back the orders as given, leaving out unknown ids", func(t *testing.T) {
		got, err := st.Orders(ctx, []string{"A2", "nope", "A1"})
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got, func(a, b order.Order) int { return strings.Compare(a.OrderID, b.OrderID) })
		want := []order.Order{newOrder("A1", 2147), newOrder("A2", 2147)}
		if len(got) != 2 {
			t.Fatalf("Orders = %d orders, want 2", len(got))
		}
		for i := range want {
			if string(got[i].AppendJSON(nil)) != string(want[i].AppendJSON(nil)) {
				t.Errorf("read back\n%s\nwant\n%s", got[i].AppendJSON(nil), want[i].AppendJSON(nil))
			}
		}
	})
	t.Run("Repeats finds nothing while every message is stored once", func(t *testing.T) {
		if got, err := st.Repeats(ctx, start, 10); err != nil || len(got) != 0 {
			t.Errorf("Repeats = %v, %v, want none", got, err)
		}
	})
	t.Run("Repeats names a message stored as two orders", func(t *testing.T) {
		// What a broken fence would leave: a second order from offset 1.
		if _, err := st.Pool().Exec(ctx, `INSERT INTO orders (order_id, customer_id, items, total_amount, status, created_at, kafka_partition, kafka_offset)
			SELECT 'B1', customer_id, items, total_amount, status, created_at, kafka_partition, kafka_offset FROM orders WHERE order_id = 'A2'`); err != nil {
			t.Fatal(err)
		}
		got, err := st.Repeats(ctx, start, 10)
		if err != nil || !slices.Equal(got, []string{"message 0/1"}) {
			t.Errorf("Repeats = %v, %v, want [message 0/1]", got, err)
		}
		// Rows stored before since are an earlier topic's: not compared.
		if got, err := st.Repeats(ctx, time.Now().Add(time.Hour), 10); err != nil || len(got) != 0 {
			t.Errorf("Repeats since later = %v, %v, want none", got, err)
		}
	})
	t.Run("StoredLatency measures the orders stored since", func(t *testing.T) {
		got, err := st.StoredLatency(ctx, start)
		if err != nil || got.N != 4 || got.P50 <= 0 {
			t.Errorf("StoredLatency = %+v, %v, want 4 orders", got, err)
		}
		if got, err := st.StoredLatency(ctx, time.Now().Add(time.Hour)); err != nil || got.N != 0 {
			t.Errorf("StoredLatency of the future = %+v, %v, want none", got, err)
		}
	})
}
