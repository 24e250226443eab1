package store_test

import (
	"errors"
	"testing"
	"time"

	"foodpipe/internal/order"
	"foodpipe/internal/store"
	"foodpipe/internal/store/dbtest"
)

// analyticsState is everything a group's aggregates hold, as text, for comparing.
func analyticsState(t *testing.T, st *store.Store, group string) map[string]string {
	t.Helper()
	ctx := ctxFor(t)
	out := map[string]string{}
	for name, q := range map[string]string{
		"minute":   `SELECT to_char(minute AT TIME ZONE 'UTC', 'HH24:MI') || ' ' || orders || ' ' || revenue FROM analytics_minute WHERE group_id = $1`,
		"item":     `SELECT to_char(minute AT TIME ZONE 'UTC', 'HH24:MI') || ' ' || item || ' ' || quantity || ' ' || revenue FROM analytics_item_minute WHERE group_id = $1`,
		"total":    `SELECT item || ' ' || quantity || ' ' || revenue FROM analytics_item_total WHERE group_id = $1`,
		"customer": `SELECT customer_id || ' ' || orders || ' ' || spent || ' ' || to_char(last_order_at AT TIME ZONE 'UTC', 'HH24:MI:SS') FROM analytics_customer WHERE group_id = $1`,
	} {
		rows, err := st.Pool().Query(ctx, q+" ORDER BY 1", group)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out[name+": "+s] = "x"
		}
		rows.Close()
	}
	return out
}

func analyticsOrder(id, customer string, at time.Time, items ...order.Item) order.Order {
	var total order.Money
	for _, it := range items {
		total += order.Money(it.Quantity) * it.Price
	}
	return order.Order{OrderID: id, CustomerID: customer, Items: items, TotalAmount: total, Status: "pending", CreatedAt: at}
}

// The aggregates count each order once, in the minute (UTC) it was made:
// across a minute boundary, when it arrives late, when it comes again at a
// new offset, and not at all from a batch behind the stored offsets.
func TestAnalyticsCountEachOrderOnceInItsMinute(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	st := dbtest.NewStore(t)
	a := st.Analytics()
	noon := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	burger, fries := order.Item{Name: "Burger", Quantity: 2, Price: 899}, order.Item{Name: "Fries", Quantity: 1, Price: 349}
	o1 := analyticsOrder("O1", "C1", noon.Add(59*time.Second+999999*time.Microsecond), burger) // 12:00, 17.98
	o2 := analyticsOrder("O2", "C2", noon.Add(time.Minute), burger, fries)                     // 12:01, 21.47
	late := analyticsOrder("O3", "C1", noon.Add(30*time.Second), fries)                        // 12:00, 3.49, arrives later
	batch := func(from int64, os ...order.Order) store.Batch {
		b := store.Batch{Group: "order-analytics", Offsets: offsets(from, from+int64(len(os)))}
		for i, o := range os {
			b.Rows = append(b.Rows, store.Row{Order: o, Partition: 0, Offset: from + int64(i)})
		}
		return b
	}

	if res, err := a.WriteBatch(ctx, batch(0, o1, o2)); err != nil || res.Inserted != 2 {
		t.Fatalf("first batch: %+v, %v", res, err)
	}
	if res, err := a.WriteBatch(ctx, batch(2, late)); err != nil || res.Inserted != 1 {
		t.Fatalf("late order: %+v, %v", res, err)
	}
	want := map[string]string{
		"minute: 12:00 2 21.47": "x", "minute: 12:01 1 21.47": "x",
		"item: 12:00 Burger 2 17.98": "x", "item: 12:00 Fries 1 3.49": "x",
		"item: 12:01 Burger 2 17.98": "x", "item: 12:01 Fries 1 3.49": "x",
		"total: Burger 4 35.96": "x", "total: Fries 2 6.98": "x",
		"customer: C1 2 21.47 12:00:59": "x", "customer: C2 1 21.47 12:01:00": "x",
	}
	check := func(when string) {
		t.Helper()
		got := analyticsState(t, st, "order-analytics")
		for k := range want {
			if got[k] == "" {
				t.Errorf("%s: missing %q; have %v", when, k, got)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d aggregate rows, want %d: %v", when, len(got), len(want), got)
		}
	}
	check("after two batches")

	// The same order again at a new offset (a replay, a producer's retry),
	// next to an in-batch repeat: counted as duplicates, nothing added.
	res, err := a.WriteBatch(ctx, batch(3, o2, late, late))
	if err != nil || res.Inserted != 0 || len(res.Duplicates) != 3 {
		t.Fatalf("re-delivery: %+v, %v", res, err)
	}
	check("after a re-delivery")

	// A batch from behind the stored offsets (a member that lost its
	// partition) writes nothing.
	if _, err := a.WriteBatch(ctx, batch(1, analyticsOrder("O9", "C9", noon, fries))); !errors.Is(err, store.ErrStaleOffsets) {
		t.Fatalf("stale batch: %v, want ErrStaleOffsets", err)
	}
	check("after a stale batch")
	if n, err := a.Counted(ctx, "order-analytics"); err != nil || n != 3 {
		t.Errorf("Counted = %d (%v), want the 3 orders counted", n, err)
	}
	if next, err := a.Offsets(ctx, "order-analytics", "orders"); err != nil || next[0] != 6 {
		t.Errorf("next offset %v (%v), want 6", next, err)
	}

	// Another group counts the same orders for itself.
	if res, err := a.WriteBatch(ctx, store.Batch{Group: "replay", Rows: batch(0, o1, o2, late).Rows, Offsets: offsets(0, 3)}); err != nil || res.Inserted != 3 {
		t.Fatalf("second group: %+v, %v", res, err)
	}
	got := analyticsState(t, st, "replay")
	for k := range want {
		if got[k] == "" {
			t.Errorf("second group: missing %q", k)
		}
	}
	if n, err := st.Count(ctx); err != nil || n != 0 {
		t.Errorf("the orders table holds %d rows (%v): analytics must not write orders", n, err)
	}
}

// Differences is empty when the aggregates equal the sums computed from
// the orders table, and names the key where they do not; Report reads them.
func TestAnalyticsDifferencesAndReport(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	st := dbtest.NewStore(t)
	a := st.Analytics()
	noon := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	burger, fries := order.Item{Name: "Burger", Quantity: 2, Price: 899}, order.Item{Name: "Fries", Quantity: 3, Price: 349}
	cola := order.Item{Name: "Cola", Quantity: 1, Price: 999}
	os := []order.Order{
		analyticsOrder("O1", "C1", noon.Add(10*time.Second), burger),
		analyticsOrder("O2", "C2", noon.Add(70*time.Second), burger, fries),
		analyticsOrder("O3", "C1", noon.Add(80*time.Second), fries),
		// 9.99 sorts above 35.96 as text; the report must sort amounts.
		analyticsOrder("O4", "C3", noon.Add(90*time.Second), cola),
	}
	var rs []store.Row
	for i, o := range os {
		rs = append(rs, store.Row{Order: o, Partition: 0, Offset: int64(i)})
	}
	if _, err := st.WriteBatch(ctx, store.Batch{Group: "order-processors", Rows: rs, Offsets: offsets(0, 4)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteBatch(ctx, store.Batch{Group: "order-analytics", Rows: rs[:2], Offsets: offsets(0, 2)}); err != nil {
		t.Fatal(err)
	}
	diff, err := a.Differences(ctx, "order-analytics")
	if err != nil {
		t.Fatal(err)
	}
	if len(diff) == 0 {
		t.Fatal("an order not yet counted shows no difference")
	}
	if _, err := a.WriteBatch(ctx, store.Batch{Group: "order-analytics", Rows: rs[2:], Offsets: offsets(2, 4)}); err != nil {
		t.Fatal(err)
	}
	if diff, err = a.Differences(ctx, "order-analytics"); err != nil || len(diff) != 0 {
		t.Fatalf("differences after every order was counted: %v, %v", diff, err)
	}

	r, err := a.Report(ctx, "order-analytics", noon.Add(time.Minute), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Minutes) != 1 || !r.Minutes[0].Minute.Equal(noon.Add(time.Minute)) || r.Minutes[0].Orders != 3 || r.Minutes[0].Revenue != "48.91" {
		t.Errorf("minutes since 12:01 = %+v, want one: 3 orders, 48.91", r.Minutes)
	}
	if len(r.TopItems) != 1 || r.TopItems[0] != (store.ItemSales{Item: "Burger", Quantity: 4, Revenue: "35.96"}) {
		t.Errorf("top item = %+v, want Burger 4 35.96", r.TopItems)
	}
	if len(r.TopCustomers) != 1 || r.TopCustomers[0].CustomerID != "C1" || r.TopCustomers[0].Spent != "28.45" {
		t.Errorf("top customer = %+v, want C1 28.45 (C2 spent as much; ties go by id)", r.TopCustomers)
	}
}
