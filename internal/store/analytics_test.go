package store_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
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

// A batch whose increments fail counts nothing: the orders it marked
// counted and the offsets it stored in the same transaction are rolled back
// with them, so the batch, written again once the fault is gone, is counted
// once. (The increments and the COMMIT travel in one pipeline: PostgreSQL
// must skip the COMMIT after the failed increments.)
func TestAnAnalyticsBatchWhoseIncrementsFailCountsNothing(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	st := dbtest.NewStore(t)
	a := st.Analytics()
	noon := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	fries := order.Item{Name: "Fries", Quantity: 1, Price: 349}
	b := store.Batch{Group: "order-analytics", Offsets: offsets(0, 2), Rows: []store.Row{
		{Order: analyticsOrder("O1", "C1", noon, fries), Partition: 0, Offset: 0},
		{Order: analyticsOrder("O2", "C7", noon, fries), Partition: 0, Offset: 1},
	}}
	if _, err := st.Pool().Exec(ctx, `ALTER TABLE analytics_customer ADD CONSTRAINT refuse_c7 CHECK (customer_id <> 'C7')`); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteBatch(ctx, b); err == nil || !strings.Contains(err.Error(), "add aggregates") {
		t.Fatalf("a batch whose increments fail: %v, want the increments' error", err)
	}
	if n, err := a.Counted(ctx, "order-analytics"); err != nil || n != 0 {
		t.Errorf("Counted = %d (%v) after the failed batch, want 0", n, err)
	}
	if next, err := a.Offsets(ctx, "order-analytics", "orders"); err != nil || len(next) != 0 {
		t.Errorf("offsets %v (%v) after the failed batch, want none stored", next, err)
	}
	if got := analyticsState(t, st, "order-analytics"); len(got) != 0 {
		t.Errorf("aggregates after the failed batch: %v, want none", got)
	}
	if _, err := st.Pool().Exec(ctx, `ALTER TABLE analytics_customer DROP CONSTRAINT refuse_c7`); err != nil {
		t.Fatal(err)
	}
	if res, err := a.WriteBatch(ctx, b); err != nil || res.Inserted != 2 || len(res.Duplicates) != 0 {
		t.Fatalf("the batch again: %+v, %v, want both counted", res, err)
	}
	if got := analyticsState(t, st, "order-analytics"); got["total: Fries 2 6.98"] == "" {
		t.Errorf("aggregates after the batch again: %v, want both orders' fries", got)
	}
}

// Check finds no difference while the group lags (the orders it has not
// counted are counted apart), none once it has caught up; Report reads the
// aggregates.
func TestAnalyticsCheckAndReport(t *testing.T) {
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
	c, err := a.Check(ctx, "order-analytics")
	if err != nil || c.Checked != 2 || c.NotCounted != 2 || len(c.Differences) != 0 {
		t.Fatalf("check while the group lags by 2 = %+v, %v; want 2 checked, 2 not counted, no difference", c, err)
	}
	if _, err := a.WriteBatch(ctx, store.Batch{Group: "order-analytics", Rows: rs[2:], Offsets: offsets(2, 4)}); err != nil {
		t.Fatal(err)
	}
	if c, err = a.Check(ctx, "order-analytics"); err != nil || c.Checked != 4 || c.NotCounted != 0 || len(c.Differences) != 0 {
		t.Fatalf("check after every order was counted = %+v, %v; want 4 checked, none left, no difference", c, err)
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

// Check holds the aggregates against the orders the group counted, not the
// whole table: in a database shared with an earlier run, the orders stored
// before the group began are counted apart and are no difference. What it
// counted must still be in the table with the content it counted, and each
// aggregate must be their sum.
func TestAnalyticsCheckHoldsTheCountedOrdersAgainstTheTable(t *testing.T) {
	t.Parallel()
	noon := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	burger, fries := order.Item{Name: "Burger", Quantity: 2, Price: 899}, order.Item{Name: "Fries", Quantity: 1, Price: 349}
	rows := func(os ...order.Order) []store.Row {
		var rs []store.Row
		for _, o := range os {
			rs = append(rs, store.Row{Order: o})
		}
		return rs
	}
	// batchOf is group's batch of rs at offsets 0, 1, ... of partition 0.
	batchOf := func(group string, rs []store.Row) store.Batch {
		b := store.Batch{Group: group, Offsets: offsets(0, int64(len(rs)))}
		for i, r := range rs {
			r.Offset = int64(i)
			b.Rows = append(b.Rows, r)
		}
		return b
	}
	earlier := rows(analyticsOrder("E1", "C1", noon, burger), analyticsOrder("E2", "C2", noon.Add(time.Minute), fries),
		analyticsOrder("E3", "C1", noon.Add(time.Hour), burger, fries))
	now := rows(analyticsOrder("N1", "C1", noon.Add(10*time.Second), fries), analyticsOrder("N2", "C3", noon.Add(2*time.Hour), burger))
	for _, c := range []struct {
		name        string
		stored      []store.Row // by the orders group
		counted     []store.Row // by the analytics group
		tamper      string      // SQL run on the aggregates afterwards
		checked     int64
		notCounted  int64
		differences []string // each must be in a difference; none when empty
	}{
		{name: "orders stored before the group began are counted apart, not a difference",
			stored: append(slices.Clone(earlier), now...), counted: now, checked: 2, notCounted: 3},
		{name: "an order counted that the table does not hold is a difference",
			stored: now[:1], counted: now, checked: 2, notCounted: 0,
			differences: []string{"order N2: counted, not in the orders table", "customer C3", "item Burger"}},
		{name: "an order the table holds with other content than the group counted is a difference",
			stored:  rows(analyticsOrder("N1", "C1", noon.Add(10*time.Second), burger)),
			counted: now[:1], checked: 1, notCounted: 0, differences: []string{"item Burger", "item Fries", "customer C1"}},
		{name: "an aggregate that is not the sum of the counted orders is a difference",
			stored: append(slices.Clone(earlier), now...), counted: now, checked: 2, notCounted: 3,
			tamper:      `UPDATE analytics_customer SET spent = spent + 0.01 WHERE customer_id = 'C3'`,
			differences: []string{"customer C3: orders 1 spent 17.98, counted 1 spent 17.99"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxFor(t)
			st := dbtest.NewStore(t)
			a := st.Analytics()
			if _, err := st.WriteBatch(ctx, batchOf("order-processors", c.stored)); err != nil {
				t.Fatal(err)
			}
			if _, err := a.WriteBatch(ctx, batchOf("order-analytics", c.counted)); err != nil {
				t.Fatal(err)
			}
			if c.tamper != "" {
				if _, err := st.Pool().Exec(ctx, c.tamper); err != nil {
					t.Fatal(err)
				}
			}
			got, err := a.Check(ctx, "order-analytics")
			if err != nil {
				t.Fatal(err)
			}
			if got.Checked != c.checked || got.NotCounted != c.notCounted {
				t.Errorf("checked %d, not counted %d; want %d, %d", got.Checked, got.NotCounted, c.checked, c.notCounted)
			}
			if len(c.differences) == 0 && len(got.Differences) != 0 {
				t.Errorf("differences %q, want none", got.Differences)
			}
			if len(c.differences) > 0 && len(got.Differences) == 0 {
				t.Errorf("no difference found, want %q", c.differences)
			}
			for _, want := range c.differences {
				if !slices.ContainsFunc(got.Differences, func(d string) bool { return strings.HasPrefix(d, want) }) {
					t.Errorf("no difference begins %q: %q", want, got.Differences)
				}
			}
		})
	}
}

// An item name sent composed ("è" as U+00E8) and decomposed ("e" and
// U+0300) is one item: the aggregates key names in NFC, while the orders
// table keeps the bytes the producer sent, and Check keys them as the
// aggregation does.
func TestAnalyticsKeysItemNamesInNFC(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	st := dbtest.NewStore(t)
	a := st.Analytics()
	noon := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	const composed, decomposed = "Cr\u00e8me br\u00fbl\u00e9e", "Cre\u0300me bru\u0302le\u0301e"
	var rs []store.Row
	for i, name := range []string{composed, decomposed, decomposed} {
		o := analyticsOrder(fmt.Sprintf("O%d", i+1), "C1", noon.Add(time.Duration(i)*time.Second), order.Item{Name: name, Quantity: 1, Price: 650})
		rs = append(rs, store.Row{Order: o, Partition: 0, Offset: int64(i)})
	}
	if _, err := st.WriteBatch(ctx, store.Batch{Group: "order-processors", Rows: rs, Offsets: offsets(0, 3)}); err != nil {
		t.Fatal(err)
	}
	// Two batches: the second name meets the row the first one made.
	if _, err := a.WriteBatch(ctx, store.Batch{Group: "order-analytics", Rows: rs[:1], Offsets: offsets(0, 1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteBatch(ctx, store.Batch{Group: "order-analytics", Rows: rs[1:], Offsets: offsets(1, 3)}); err != nil {
		t.Fatal(err)
	}
	got := analyticsState(t, st, "order-analytics")
	for _, want := range []string{"item: 12:00 " + composed + " 3 19.50", "total: " + composed + " 3 19.50"} {
		if got[want] == "" {
			t.Errorf("missing %q", want)
		}
	}
	for k := range got {
		if strings.Contains(k, decomposed) {
			t.Errorf("an item row not keyed in NFC: %q", k)
		}
	}
	var stored string
	if err := st.Pool().QueryRow(ctx, `SELECT items->0->>'name' FROM orders WHERE order_id = 'O2'`).Scan(&stored); err != nil || stored != decomposed {
		t.Errorf("the orders table holds %q (%v), want the decomposed name as sent", stored, err)
	}
	if c, err := a.Check(ctx, "order-analytics"); err != nil || c.Checked != 3 || len(c.Differences) != 0 {
		t.Errorf("check = %+v, %v; want 3 checked and no difference", c, err)
	}
}
