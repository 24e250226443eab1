package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"foodpipe/internal/order"
	"foodpipe/internal/store"
	"foodpipe/internal/store/dbtest"

	"github.com/jackc/pgx/v5"
)

// created is the creation time of the test orders; it has microseconds so
// that a truncating round trip would show.
var created = time.Date(2025, 1, 10, 14, 30, 0, 123456000, time.UTC)

func newOrder(id string, cents order.Money) order.Order {
	return order.Order{
		OrderID:    id,
		CustomerID: "CUST-" + id,
		Items: []order.Item{
			{Name: "Burger", Quantity: 1, Price: cents - 349},
			{Name: "Fries", Quantity: 1, Price: 349},
		},
		TotalAmount: cents,
		Status:      "pending",
		CreatedAt:   created,
	}
}

// rows makes one row per id on partition 0, at offsets from, from+1, ...
func rows(from int64, ids ...string) []store.Row {
	out := make([]store.Row, len(ids))
	for i, id := range ids {
		out[i] = store.Row{Order: newOrder(id, 2147), Partition: 0, Offset: from + int64(i)}
	}
	return out
}

// ways are the two ways a batch of new orders goes in: a small one as
// arrays in the transaction's first round trip, a large one by COPY. Each
// way's rows are r and, for the COPY, filler orders (ids prefixed with the
// way's name) that make the batch large enough.
var ways = []struct {
	name  string
	batch func(r []store.Row, prefix string) []store.Row
}{
	{"in a small batch (sent as arrays)", func(r []store.Row, _ string) []store.Row { return r }},
	{"in a large batch (a COPY)", func(r []store.Row, prefix string) []store.Row {
		out := append([]store.Row{}, r...)
		for i := range 100 {
			out = append(out, store.Row{Order: newOrder(fmt.Sprintf("%s-FILL-%d", prefix, i), 100)})
		}
		return out
	}},
}

func offsets(from, next int64) []store.PartitionOffset {
	return []store.PartitionOffset{{Topic: "orders", Partition: 0, From: from, Next: next}}
}

func ids(rs []store.Row) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Order.OrderID)
	}
	return out
}

func rejectedIDs(rs []store.Rejected) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Row.Order.OrderID)
	}
	return out
}

func equal(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestWriteBatch(t *testing.T) {
	t.Parallel()
	poisoned := func(id string, change func(*order.Order)) store.Row {
		o := newOrder(id, 2147)
		change(&o)
		return store.Row{Order: o, Partition: 0, Offset: 2}
	}
	otherTotal := rows(0, "A")
	otherTotal[0].Order = newOrder("A", 999)
	otherTotal[0].Order.Items = otherTotal[0].Order.Items[:1]
	otherTotal[0].Order.Items[0].Price = 999

	tests := []struct {
		name    string
		before  []store.Batch // written first, and must succeed
		batch   store.Batch
		wantErr error

		inserted    int
		duplicates  []string
		conflicts   []string
		rejected    []string
		wantCount   int64
		wantOffsets map[int32]int64
	}{
		{
			name:        "a new batch inserts every order and stores its offsets",
			batch:       store.Batch{Group: "g", Rows: rows(0, "A", "B", "C"), Offsets: offsets(0, 3)},
			inserted:    3,
			wantCount:   3,
			wantOffsets: map[int32]int64{0: 3},
		},
		{
			name:        "an exact re-delivery at later offsets inserts nothing and advances the offsets",
			before:      []store.Batch{{Group: "g", Rows: rows(0, "A", "B", "C"), Offsets: offsets(0, 3)}},
			batch:       store.Batch{Group: "g", Rows: rows(3, "A", "B", "C"), Offsets: offsets(3, 6)},
			duplicates:  []string{"A", "B", "C"},
			wantCount:   3,
			wantOffsets: map[int32]int64{0: 6},
		},
		{
			name:        "a re-delivery without offsets reports duplicates and leaves the offsets alone",
			before:      []store.Batch{{Group: "g", Rows: rows(0, "A", "B"), Offsets: offsets(0, 2)}},
			batch:       store.Batch{Group: "g", Rows: rows(0, "B", "A", "C")},
			inserted:    1,
			duplicates:  []string{"B", "A"},
			wantCount:   3,
			wantOffsets: map[int32]int64{0: 2},
		},
		{
			name:        "an order stored with another total is a conflict and is not overwritten",
			before:      []store.Batch{{Group: "g", Rows: rows(0, "A"), Offsets: offsets(0, 1)}},
			batch:       store.Batch{Group: "g", Rows: append(otherTotal, rows(1, "B")...), Offsets: offsets(1, 3)},
			inserted:    1,
			conflicts:   []string{"A"},
			wantCount:   2,
			wantOffsets: map[int32]int64{0: 3},
		},
		{
			name:        "an order repeated identically inside a batch is stored once and then a duplicate",
			batch:       store.Batch{Group: "g", Rows: rows(0, "A", "B", "A", "A"), Offsets: offsets(0, 4)},
			inserted:    2,
			duplicates:  []string{"A", "A"},
			wantCount:   2,
			wantOffsets: map[int32]int64{0: 4},
		},
		{
			name:        "an order repeated with other content inside a batch is a conflict and the first wins",
			batch:       store.Batch{Group: "g", Rows: append(rows(0, "A", "B"), otherTotal...), Offsets: offsets(0, 3)},
			inserted:    2,
			conflicts:   []string{"A"},
			wantCount:   2,
			wantOffsets: map[int32]int64{0: 3},
		},
		{
			name:        "a batch starting below the stored offset is fenced and writes nothing",
			before:      []store.Batch{{Group: "g", Rows: rows(0, "A", "B"), Offsets: offsets(0, 2)}},
			batch:       store.Batch{Group: "g", Rows: rows(1, "X", "Y"), Offsets: offsets(1, 3)},
			wantErr:     store.ErrStaleOffsets,
			wantCount:   2,
			wantOffsets: map[int32]int64{0: 2},
		},
		{
			name:   "one stale partition among several fences the whole batch",
			before: []store.Batch{{Group: "g", Offsets: []store.PartitionOffset{{Topic: "orders", Partition: 1, From: 0, Next: 10}}}},
			batch: store.Batch{Group: "g", Rows: rows(0, "A"), Offsets: []store.PartitionOffset{
				{Topic: "orders", Partition: 0, From: 0, Next: 1},
				{Topic: "orders", Partition: 1, From: 5, Next: 12},
			}},
			wantErr:     store.ErrStaleOffsets,
			wantCount:   0,
			wantOffsets: map[int32]int64{1: 10},
		},
		{
			name:        "another consumer group keeps offsets of its own",
			before:      []store.Batch{{Group: "other", Offsets: offsets(0, 50)}},
			batch:       store.Batch{Group: "g", Rows: rows(0, "A"), Offsets: offsets(0, 1)},
			inserted:    1,
			wantCount:   1,
			wantOffsets: map[int32]int64{0: 1},
		},
		{
			name:        "a batch may skip offsets, as compacted or transactional topics do",
			before:      []store.Batch{{Group: "g", Rows: rows(0, "A"), Offsets: offsets(0, 1)}},
			batch:       store.Batch{Group: "g", Rows: rows(7, "B"), Offsets: offsets(7, 8)},
			inserted:    1,
			wantCount:   2,
			wantOffsets: map[int32]int64{0: 8},
		},
		{
			name: "rows PostgreSQL refuses are rejected and the rest of the batch is stored",
			batch: store.Batch{Group: "g", Offsets: offsets(0, 9), Rows: []store.Row{
				rows(0, "A")[0],
				poisoned("BAD-UTF8", func(o *order.Order) { o.OrderID = "BAD-UTF8-\xff" }),
				poisoned("NUL-IN-ITEMS", func(o *order.Order) { o.Items[0].Name = "Bur\x00ger" }),
				rows(1, "B")[0],
				poisoned("TOO-EXPENSIVE", func(o *order.Order) { o.TotalAmount = 100_000_000_00 }),
				poisoned("LONG-CUSTOMER", func(o *order.Order) { o.CustomerID = strings.Repeat("C", 51) }),
				poisoned("NUL-IN-STATUS", func(o *order.Order) { o.Status = "pend\x00ing" }),
				rows(2, "C")[0],
			}},
			inserted:    3,
			rejected:    []string{"BAD-UTF8-\xff", "NUL-IN-ITEMS", "TOO-EXPENSIVE", "LONG-CUSTOMER", "NUL-IN-STATUS"},
			wantCount:   3,
			wantOffsets: map[int32]int64{0: 9},
		},
		{
			name: "a batch of only refused rows still stores its offsets",
			batch: store.Batch{Group: "g", Offsets: offsets(0, 1), Rows: []store.Row{
				poisoned("NUL-IN-ITEMS", func(o *order.Order) { o.Items[0].Name = "\x00" }),
			}},
			rejected:    []string{"NUL-IN-ITEMS"},
			wantCount:   0,
			wantOffsets: map[int32]int64{0: 1},
		},
		{
			name: "an identical repeat of a refused row is rejected with it",
			batch: store.Batch{Group: "g", Offsets: offsets(0, 3), Rows: []store.Row{
				poisoned("BAD", func(o *order.Order) { o.CustomerID = strings.Repeat("C", 51) }),
				rows(1, "A")[0],
				poisoned("BAD", func(o *order.Order) { o.CustomerID = strings.Repeat("C", 51) }),
			}},
			inserted:    1,
			rejected:    []string{"BAD", "BAD"},
			wantCount:   1,
			wantOffsets: map[int32]int64{0: 3},
		},
		{
			name: "orders created outside the timestamptz range are rejected before they reach PostgreSQL",
			batch: store.Batch{Group: "g", Offsets: offsets(0, 3), Rows: []store.Row{
				poisoned("YEAR-300000", func(o *order.Order) { o.CreatedAt = time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC) }),
				poisoned("YEAR-MINUS-300000", func(o *order.Order) { o.CreatedAt = time.Date(-300000, 1, 1, 0, 0, 0, 0, time.UTC) }),
				poisoned("4714-11-23-BC", func(o *order.Order) {
					o.CreatedAt = time.Date(-4713, 11, 24, 0, 0, 0, 0, time.UTC).Add(-time.Microsecond)
				}),
				rows(0, "A")[0],
				poisoned("4714-11-24-BC", func(o *order.Order) { o.CreatedAt = time.Date(-4713, 11, 24, 0, 0, 0, 0, time.UTC) }),
				poisoned("294276-12-31", func(o *order.Order) {
					o.CreatedAt = time.Date(294277, 1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Microsecond)
				}),
			}},
			inserted:    3,
			rejected:    []string{"YEAR-300000", "YEAR-MINUS-300000", "4714-11-23-BC"},
			wantCount:   3,
			wantOffsets: map[int32]int64{0: 3},
		},
		{
			name:        "offsets without rows are stored, for batches of only invalid messages",
			before:      []store.Batch{{Group: "g", Offsets: offsets(0, 4)}},
			batch:       store.Batch{Group: "g", Offsets: offsets(4, 9)},
			wantCount:   0,
			wantOffsets: map[int32]int64{0: 9},
		},
		{
			name:        "an empty batch does nothing",
			batch:       store.Batch{Group: "g"},
			wantCount:   0,
			wantOffsets: map[int32]int64{},
		},
		{
			name:        "offsets that run backwards are refused as an invalid batch",
			batch:       store.Batch{Group: "g", Rows: rows(0, "A"), Offsets: offsets(5, 4)},
			wantErr:     store.ErrInvalidBatch,
			wantOffsets: map[int32]int64{},
		},
		{
			name: "a partition listed twice is refused as an invalid batch",
			batch: store.Batch{Group: "g", Rows: rows(0, "A"),
				Offsets: append(offsets(0, 1), offsets(1, 2)...)},
			wantErr:     store.ErrInvalidBatch,
			wantOffsets: map[int32]int64{},
		},
		{
			name:        "offsets without a consumer group are refused as an invalid batch",
			batch:       store.Batch{Rows: rows(0, "A"), Offsets: offsets(0, 1)},
			wantErr:     store.ErrInvalidBatch,
			wantOffsets: map[int32]int64{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxFor(t)
			st := dbtest.NewStore(t)
			for _, b := range tt.before {
				if _, err := st.WriteBatch(ctx, b); err != nil {
					t.Fatalf("write earlier batch: %v", err)
				}
			}
			res, err := st.WriteBatch(ctx, tt.batch)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("WriteBatch error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil {
				if res.Inserted != tt.inserted {
					t.Errorf("Inserted = %d, want %d", res.Inserted, tt.inserted)
				}
				if got := ids(res.Duplicates); !equal(got, tt.duplicates) {
					t.Errorf("Duplicates = %v, want %v", got, tt.duplicates)
				}
				if got := ids(res.Conflicts); !equal(got, tt.conflicts) {
					t.Errorf("Conflicts = %v, want %v", got, tt.conflicts)
				}
				if got := rejectedIDs(res.Rejected); !equal(got, tt.rejected) {
					t.Errorf("Rejected = %v, want %v", got, tt.rejected)
				}
				for _, r := range res.Rejected {
					if !errors.Is(r.Err, store.ErrRejected) || store.IsTransient(r.Err) ||
						!strings.Contains(r.Err.Error(), r.Row.Order.OrderID) {
						t.Errorf("rejected %s: Err = %v, want a permanent error wrapping ErrRejected naming the order", r.Row.Order.OrderID, r.Err)
					}
				}
			}
			if n, err := st.Count(ctx); err != nil || n != tt.wantCount {
				t.Errorf("Count = %d, %v, want %d", n, err, tt.wantCount)
			}
			got, err := st.Offsets(ctx, "g", "orders")
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.wantOffsets) {
				t.Errorf("Offsets = %v, want %v", got, tt.wantOffsets)
			}
		})
	}
}

func TestWriteBatchStoresTheOrderAsGiven(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	st := dbtest.NewStore(t)
	for i, way := range ways {
		t.Run(way.name, func(t *testing.T) {
			storesTheOrderAsGiven(t, ctx, st, fmt.Sprintf("ORD-20250110-%03d", i), way.batch)
		})
	}
}

func storesTheOrderAsGiven(t *testing.T, ctx context.Context, st *store.Store, id string, batch func([]store.Row, string) []store.Row) {
	o := newOrder(id, 2147)
	o.CreatedAt = created.In(time.FixedZone("CET", 3600))
	if _, err := st.WriteBatch(ctx, store.Batch{Rows: batch([]store.Row{{Order: o, Partition: 3, Offset: 42}}, id)}); err != nil {
		t.Fatal(err)
	}

	var customer, status, total string
	var items []byte
	var at time.Time
	var partition int32
	var offset int64
	err := st.Pool().QueryRow(ctx, `SELECT customer_id, items::text, total_amount::text, status, created_at,
		kafka_partition, kafka_offset FROM orders WHERE order_id = $1`, o.OrderID).
		Scan(&customer, &items, &total, &status, &at, &partition, &offset)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	if err := st.Pool().QueryRow(ctx, `SELECT $1::jsonb::text`, o.ItemsJSON()).Scan(&want); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		field     string
		got, want any
	}{
		{"customer_id", customer, o.CustomerID},
		{"items", string(items), string(want)},
		{"total_amount", total, "21.47"},
		{"status", status, "pending"},
		{"created_at", at.UTC(), created},
		{"kafka_partition", partition, int32(3)},
		{"kafka_offset", offset, int64(42)},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.field, tt.got, tt.want)
		}
	}
}

func TestWriteBatchKeepsTheAmount(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	st := dbtest.NewStore(t)
	tests := []struct {
		cents order.Money
		want  string
	}{
		{0, "0.00"}, {1, "0.01"}, {5, "0.05"}, {10, "0.10"}, {99, "0.99"}, {100, "1.00"}, {101, "1.01"},
		{2147, "21.47"}, {1_000_000, "10000.00"}, {1_000_001, "10000.01"}, {1_234_567_890, "12345678.90"},
		{order.MaxMoney, "99999999.99"}, {-1, "-0.01"}, {-2147, "-21.47"}, {-100_000_000, "-1000000.00"},
	}
	for w, way := range ways {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%d cents are stored %s as %s and read back as a duplicate", tt.cents, way.name, tt.want), func(t *testing.T) {
				id := fmt.Sprintf("M%d-%d", w, tt.cents)
				r := []store.Row{{Order: newOrder(id, tt.cents)}}
				if res, err := st.WriteBatch(ctx, store.Batch{Rows: way.batch(r, id)}); err != nil || res.Inserted != len(way.batch(r, id)) {
					t.Fatalf("WriteBatch = %+v, %v", res, err)
				}
				amountIs(t, ctx, st, r, tt.want)
			})
		}
	}
	t.Run("amounts the column cannot hold are rejected", func(t *testing.T) {
		r := rows(0, "MAX+1", "MIN-INT64", "FINE")
		r[0].Order.TotalAmount = order.MaxMoney + 1
		r[1].Order.TotalAmount = math.MinInt64
		res, err := st.WriteBatch(ctx, store.Batch{Rows: r})
		if err != nil || res.Inserted != 1 || !equal(rejectedIDs(res.Rejected), []string{"MAX+1", "MIN-INT64"}) {
			t.Errorf("WriteBatch = %+v, %v; want the first two rejected", res, err)
		}
	})
}

// amountIs checks the stored amount of the order r holds, and that writing
// it again finds it a duplicate.
func amountIs(t *testing.T, ctx context.Context, st *store.Store, r []store.Row, want string) {
	t.Helper()
	var got string
	if err := st.Pool().QueryRow(ctx, `SELECT total_amount::text FROM orders WHERE order_id = $1`, r[0].Order.OrderID).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("total_amount = %s, want %s", got, want)
	}
	// The probe's comparison reads the amount the same way.
	if res, err := st.WriteBatch(ctx, store.Batch{Rows: r}); err != nil || len(res.Duplicates) != 1 {
		t.Errorf("second WriteBatch = %+v, %v; want a duplicate", res, err)
	}
}

func TestWriteBatchKeepsTheInstant(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	st := dbtest.NewStore(t)
	tests := []struct {
		name string
		at   time.Time
		want string // as PostgreSQL prints it, in UTC
	}{
		{"an instant after 2000 is kept to the microsecond", created, "2025-01-10 14:30:00.123456"},
		{"nanoseconds are truncated to the microsecond", time.Date(2025, 1, 10, 14, 30, 0, 999999999, time.UTC), "2025-01-10 14:30:00.999999"},
		{"an instant in another zone is the same instant", time.Date(2025, 1, 10, 15, 30, 0, 0, time.FixedZone("CET", 3600)), "2025-01-10 14:30:00"},
		{"an instant before 2000 is kept", time.Date(1999, 12, 31, 23, 59, 59, 500000000, time.UTC), "1999-12-31 23:59:59.5"},
		{"an instant before 1970 is kept", time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC), "1969-07-20 20:17:40"},
		{"the first instant PostgreSQL can hold is kept", time.Date(-4713, 11, 24, 0, 0, 0, 0, time.UTC), "4714-11-24 00:00:00 BC"},
		{"the last instant PostgreSQL can hold is kept", time.Date(294277, 1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Microsecond), "294276-12-31 23:59:59.999999"},
	}
	for w, way := range ways {
		for i, tt := range tests {
			t.Run(tt.name+" "+way.name, func(t *testing.T) {
				o := newOrder(fmt.Sprintf("T%d-%d", w, i), 2147)
				o.CreatedAt = tt.at
				batch := way.batch([]store.Row{{Order: o}}, o.OrderID)
				if res, err := st.WriteBatch(ctx, store.Batch{Rows: batch}); err != nil || res.Inserted != len(batch) {
					t.Fatalf("WriteBatch = %+v, %v", res, err)
				}
				instantIs(t, ctx, st, o.OrderID, tt.want)
			})
		}
	}
}

// instantIs checks the stored created_at of order id, in UTC.
func instantIs(t *testing.T, ctx context.Context, st *store.Store, id, want string) {
	t.Helper()
	var got string
	if err := st.Pool().QueryRow(ctx, `SELECT (created_at AT TIME ZONE 'UTC')::text
		FROM orders WHERE order_id = $1`, id).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("created_at = %s, want %s", got, want)
	}
}

func TestWriteBatchNeverOverwritesAStoredOrder(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	st := dbtest.NewStore(t)
	if _, err := st.WriteBatch(ctx, store.Batch{Rows: rows(0, "A")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*order.Order)
	}{
		{"another customer is a conflict", func(o *order.Order) { o.CustomerID = "CUST-OTHER" }},
		{"other items are a conflict", func(o *order.Order) { o.Items[0].Quantity = 2 }},
		{"another total is a conflict", func(o *order.Order) { o.TotalAmount = 1 }},
		{"another status is a conflict", func(o *order.Order) { o.Status = "confirmed" }},
		{"another creation time is a conflict", func(o *order.Order) { o.CreatedAt = o.CreatedAt.Add(time.Microsecond) }},
		{"the same creation time in another zone is a duplicate", func(o *order.Order) { o.CreatedAt = o.CreatedAt.In(time.FixedZone("X", -7200)) }},
		{"a creation time differing below a microsecond is a duplicate", func(o *order.Order) { o.CreatedAt = o.CreatedAt.Add(999) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rows(0, "A")
			tt.change(&r[0].Order)
			res, err := st.WriteBatch(ctx, store.Batch{Rows: r})
			if err != nil {
				t.Fatal(err)
			}
			wantConflict := strings.HasSuffix(tt.name, "conflict")
			if got := len(res.Conflicts) == 1; got != wantConflict || res.Inserted != 0 || len(res.Duplicates)+len(res.Conflicts) != 1 {
				t.Errorf("result = %+v, want conflict %v", res, wantConflict)
			}
		})
	}
	var total string
	if err := st.Pool().QueryRow(ctx, `SELECT total_amount::text FROM orders WHERE order_id = 'A'`).Scan(&total); err != nil || total != "21.47" {
		t.Errorf("stored total = %q, %v, want 21.47 unchanged", total, err)
	}
}

func TestWriteBatchFencesConcurrentWritersOfOnePartition(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	st := dbtest.NewStore(t)
	const writers = 4
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			// Every writer believes it owns partition 0 from offset 0.
			_, errs[w] = st.WriteBatch(ctx, store.Batch{Group: "g", Rows: rows(0, fmt.Sprintf("W%d", w)), Offsets: offsets(0, 1)})
		})
	}
	wg.Wait()
	var ok, stale int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrStaleOffsets):
			stale++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || stale != writers-1 {
		t.Errorf("%d writers succeeded and %d were fenced, want 1 and %d", ok, stale, writers-1)
	}
	if n, _ := st.Count(ctx); n != 1 {
		t.Errorf("Count = %d, want only the winner's order", n)
	}
}

func TestWriteBatchStoresOrdersWrittenByTwoWritersAtOnceOnce(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	st := dbtest.NewStore(t)
	// Two writers on different partitions carry the same 200 orders, as
	// after a producer re-sent them: whoever commits second finds them all.
	var same []string
	for i := range 200 {
		same = append(same, fmt.Sprintf("SAME-%03d", i))
	}
	results := make([]store.Result, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			b := store.Batch{Group: "g", Rows: rows(0, same...),
				Offsets: []store.PartitionOffset{{Topic: "orders", Partition: int32(w), From: 0, Next: 200}}}
			results[w], errs[w] = st.WriteBatch(ctx, b)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	inserted := results[0].Inserted + results[1].Inserted
	dups := len(results[0].Duplicates) + len(results[1].Duplicates)
	if inserted != 200 || dups != 200 {
		t.Errorf("inserted %d and found %d duplicates, want 200 and 200", inserted, dups)
	}
	if n, _ := st.Count(ctx); n != 200 {
		t.Errorf("Count = %d, want 200", n)
	}

	// Batches of new orders after that are stored as usual.
	res, err := st.WriteBatch(ctx, store.Batch{Group: "g", Rows: rows(200, "NEW-1", "NEW-2"), Offsets: offsets(200, 202)})
	if err != nil || res.Inserted != 2 {
		t.Errorf("next batch: %+v, %v; want 2 inserted", res, err)
	}
	res, err = st.WriteBatch(ctx, store.Batch{Group: "g", Rows: rows(202, "NEW-3"), Offsets: offsets(202, 203)})
	if err != nil || res.Inserted != 1 {
		t.Errorf("batch after: %+v, %v; want 1 inserted", res, err)
	}
}

func TestWriteBatchFenceErrorNamesThePartition(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	st := dbtest.NewStore(t)
	if _, err := st.WriteBatch(ctx, store.Batch{Group: "g", Offsets: offsets(0, 10)}); err != nil {
		t.Fatal(err)
	}
	_, err := st.WriteBatch(ctx, store.Batch{Group: "g", Offsets: offsets(3, 12)})
	if !errors.Is(err, store.ErrStaleOffsets) || store.IsTransient(err) ||
		!strings.Contains(err.Error(), "orders/0 stored up to offset 10, batch starts at 3") {
		t.Errorf("err = %v, want ErrStaleOffsets naming partition 0 and both offsets", err)
	}
}

func TestWriteBatchWithCanceledContext(t *testing.T) {
	t.Parallel()
	st := dbtest.NewStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := st.WriteBatch(ctx, store.Batch{Group: "g", Rows: rows(0, "A"), Offsets: offsets(0, 1)})
	if err == nil || store.IsTransient(err) {
		t.Errorf("err = %v, want a permanent error", err)
	}
}

func TestQueries(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	st := dbtest.NewStore(t)

	// 100 orders on partitions 0..3 created at created, processed i ms
	// later for i = 1..100, and one old order processed an hour later.
	var rs []store.Row
	for i := range 100 {
		r := store.Row{Order: newOrder(fmt.Sprintf("O%03d", i+1), 2147), Partition: int32(i % 4), Offset: int64(i)}
		rs = append(rs, r)
	}
	old := store.Row{Order: newOrder("OLD", 500), Partition: 7}
	old.Order.CreatedAt = created.Add(-24 * time.Hour)
	rs = append(rs, old)
	if _, err := st.WriteBatch(ctx, store.Batch{Rows: rs}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pool().Exec(ctx, `UPDATE orders SET processed_at = created_at +
		CASE WHEN order_id = 'OLD' THEN interval '1 hour' ELSE substr(order_id, 2)::int * interval '1 ms' END`); err != nil {
		t.Fatal(err)
	}

	t.Run("Count counts every stored order", func(t *testing.T) {
		if n, err := st.Count(ctx); err != nil || n != 101 {
			t.Errorf("Count = %d, %v, want 101", n, err)
		}
	})
	t.Run("CountByPartition counts the orders of each partition", func(t *testing.T) {
		got, err := st.CountByPartition(ctx)
		want := map[int32]int64{0: 25, 1: 25, 2: 25, 3: 25, 7: 1}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("CountByPartition = %v, %v, want %v", got, err, want)
		}
	})

	// Every row's processed_at differs here (set above), so each counts as
	// a batch of its own.
	latency := []struct {
		name  string
		since time.Time
		want  store.Latency
	}{
		{"Latency interpolates percentiles over the orders created since", created,
			store.Latency{P50: 50500 * time.Microsecond, P99: 99010 * time.Microsecond, Max: 100 * time.Millisecond, N: 100, Batches: 100}},
		{"Latency includes older orders when asked", created.Add(-48 * time.Hour),
			store.Latency{P50: 51 * time.Millisecond, P99: 100 * time.Millisecond, Max: time.Hour, N: 101, Batches: 101}},
		{"Latency of no orders is zero", created.Add(time.Hour), store.Latency{}},
	}
	for _, tt := range latency {
		t.Run(tt.name, func(t *testing.T) {
			got, err := st.Latency(ctx, tt.since)
			if err != nil || got != tt.want {
				t.Errorf("Latency = %+v, %v, want %+v", got, err, tt.want)
			}
		})
	}

	missing := []struct {
		name string
		ids  []string
		want []string
	}{
		{"MissingOrders lists the unknown ids in the order given", []string{"ZZZ", "O001", "AAA", "OLD", "MMM"}, []string{"ZZZ", "AAA", "MMM"}},
		{"MissingOrders of stored ids is empty", []string{"O001", "O100"}, nil},
		{"MissingOrders of no ids is empty", nil, nil},
		{"MissingOrders reports a repeated unknown id each time", []string{"X", "X"}, []string{"X", "X"}},
	}
	for _, tt := range missing {
		t.Run(tt.name, func(t *testing.T) {
			got, err := st.MissingOrders(ctx, tt.ids)
			if err != nil || !equal(got, tt.want) {
				t.Errorf("MissingOrders = %v, %v, want %v", got, err, tt.want)
			}
		})
	}
	t.Run("MissingOrders works through more ids than one query sends", func(t *testing.T) {
		many := make([]string, 120_000)
		for i := range many {
			many[i] = fmt.Sprintf("N%06d", i)
		}
		many[60_000] = "O050"
		got, err := st.MissingOrders(ctx, many)
		if err != nil || len(got) != len(many)-1 || got[0] != "N000000" || got[len(got)-1] != "N119999" {
			t.Errorf("MissingOrders returned %d ids, %v; want %d", len(got), err, len(many)-1)
		}
	})
}

func TestMigrations(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	st, err := store.Open(ctx, dbtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)

	status := func(t *testing.T) []store.Migration {
		t.Helper()
		ms, err := st.MigrateStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	// exists looks up a table, or a function when name has its arguments.
	exists := func(t *testing.T, name string) bool {
		t.Helper()
		lookup := `SELECT to_regclass($1) IS NOT NULL`
		if strings.Contains(name, "(") {
			lookup = `SELECT to_regprocedure($1) IS NOT NULL`
		}
		var ok bool
		if err := st.Pool().QueryRow(ctx, lookup, name).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}

	steps := []struct {
		name    string
		do      func() error
		wantErr error
		applied []bool // of 00001 ... 00008
	}{
		{"a fresh database has every migration pending", func() error { return nil }, nil, []bool{false, false, false, false, false, false, false, false}},
		{"up applies every migration", func() error { return st.MigrateUp(ctx) }, nil, []bool{true, true, true, true, true, true, true, true}},
		{"up again changes nothing", func() error { return st.MigrateUp(ctx) }, nil, []bool{true, true, true, true, true, true, true, true}},
		{"down rolls back the latest migration only", func() error { return st.MigrateDown(ctx) }, nil, []bool{true, true, true, true, true, true, true, false}},
		{"down again rolls back the seventh", func() error { return st.MigrateDown(ctx) }, nil, []bool{true, true, true, true, true, true, false, false}},
		{"down a third time rolls back the sixth", func() error { return st.MigrateDown(ctx) }, nil, []bool{true, true, true, true, true, false, false, false}},
		{"down a fourth time rolls back the fifth", func() error { return st.MigrateDown(ctx) }, nil, []bool{true, true, true, true, false, false, false, false}},
		{"down a fifth time rolls back the fourth", func() error { return st.MigrateDown(ctx) }, nil, []bool{true, true, true, false, false, false, false, false}},
		{"down a sixth time rolls back the third", func() error { return st.MigrateDown(ctx) }, nil, []bool{true, true, false, false, false, false, false, false}},
		{"down a seventh time rolls back the second", func() error { return st.MigrateDown(ctx) }, nil, []bool{true, false, false, false, false, false, false, false}},
		{"down an eighth time rolls back the first", func() error { return st.MigrateDown(ctx) }, nil, []bool{false, false, false, false, false, false, false, false}},
		{"down with nothing applied says so", func() error { return st.MigrateDown(ctx) }, store.ErrNoMigrationToRollBack, []bool{false, false, false, false, false, false, false, false}},
		{"up from several processes at once applies each migration once", func() error {
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for range 4 {
				wg.Go(func() { errs <- st.MigrateUp(ctx) })
			}
			wg.Wait()
			close(errs)
			return errors.Join(<-errs, <-errs, <-errs, <-errs)
		}, nil, []bool{true, true, true, true, true, true, true, true}},
	}
	files := []string{"00001_create_orders.sql", "00002_create_consumer_offsets.sql", "00003_create_dead_letters.sql", "00004_create_analytics.sql",
		"00005_create_expired_offsets.sql", "00006_create_teach_tables.sql", "00007_create_notifications.sql",
		"00008_create_fence_offsets.sql"}
	tables := []string{"orders", "consumer_offsets", "dead_letters", "analytics_minute", "expired_offsets", "teach_at_most_once", "notifications",
		"fence_offsets(text, text[], int[], bigint[], bigint[])"}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			if err := step.do(); !errors.Is(err, step.wantErr) {
				t.Fatalf("err = %v, want %v", err, step.wantErr)
			}
			ms := status(t)
			if len(ms) != len(files) {
				t.Fatalf("status has %d migrations, want %d: %+v", len(ms), len(files), ms)
			}
			for i, applied := range step.applied {
				m := ms[i]
				if m.Version != int64(i+1) || m.File != files[i] {
					t.Errorf("status %+v, want version %d and %s", m, i+1, files[i])
				}
				if m.Applied != applied || m.AppliedAt.IsZero() == applied {
					t.Errorf("status %+v, want applied = %v, with its time", m, applied)
				}
				if got := exists(t, tables[i]); got != applied {
					t.Errorf("%s exists = %v, want %v", tables[i], got, applied)
				}
			}
		})
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	const secret = "s3cr3t-pw"
	tests := []struct {
		name     string
		url      string
		mentions []string
	}{
		{"a server that is not listening names host and database", "postgres://bob:" + secret + "@127.0.0.1:1/ordersdb?connect_timeout=5", []string{"127.0.0.1:1/ordersdb", "bob"}},
		{"an unparsable URL is refused without the password", "postgres://bob:" + secret + "@127.0.0.1:notaport/ordersdb", []string{"parse database url"}},
		{"a key=value string that is not listening names host and database", "host=127.0.0.1 port=1 dbname=ordersdb user=bob password=" + secret + " connect_timeout=5", []string{"127.0.0.1:1/ordersdb"}},
		{"a database that does not exist is named", strings.Replace(dbtest.New(t), "foodpipe_test_", "foodpipe_missing_", 1), []string{"foodpipe_missing_"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := store.Open(ctx, tt.url)
			if err == nil {
				st.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error reveals the password: %v", err)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}

	t.Run("MaxConns sizes the pool and Ping reaches the server", func(t *testing.T) {
		st, err := store.Open(ctx, dbtest.New(t), store.MaxConns(3), store.MaxConns(0))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if got := st.Pool().Config().MaxConns; got != 3 {
			t.Errorf("MaxConns = %d, want 3", got)
		}
		if err := st.Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
		st.Close()
		if err := st.Ping(ctx); err == nil {
			t.Error("Ping after Close succeeded")
		}
	})
}

// A writer frozen in the middle of a statement while holding a partition's
// offsets row (here: a session that locked the row and then runs a long
// statement, as a COPY whose client was stopped does) is ended by the next
// writer of that partition once it has waited fenceWait; the next writer
// then stores its batch.
func TestAWriterFrozenMidStatementIsEndedByTheNextWriter(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	t.Parallel()
	ctx := ctxFor(t)
	st := dbtest.NewStore(t)
	if _, err := st.WriteBatch(ctx, store.Batch{Group: "g", Rows: rows(0, "A"), Offsets: offsets(0, 1)}); err != nil {
		t.Fatal(err)
	}
	holder, err := pgx.ConnectConfig(ctx, st.Pool().Config().ConnConfig.Copy())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(context.Background())
	if _, err := holder.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, "UPDATE consumer_offsets SET updated_at = now() WHERE group_id = 'g'"); err != nil {
		t.Fatal(err)
	}
	held := make(chan error, 1)
	go func() {
		_, err := holder.Exec(context.Background(), "SELECT pg_sleep(600)")
		held <- err
	}()

	begin := time.Now()
	if _, err := st.WriteBatch(ctx, store.Batch{Group: "g", Rows: rows(1, "B"), Offsets: offsets(1, 2)}); err != nil {
		t.Fatalf("the next writer: %v", err)
	}
	took := time.Since(begin)
	if took > 15*time.Second {
		t.Errorf("the next writer waited %v", took)
	}
	select {
	case err := <-held:
		if err == nil {
			t.Error("the frozen session's statement finished")
		}
	case <-time.After(10 * time.Second):
		t.Error("the frozen session is still there")
	}
	if n := st.Terminated(); n != 1 {
		t.Errorf("%d sessions ended, want 1", n)
	}
	if n, _ := st.Count(ctx); n != 2 {
		t.Errorf("Count = %d, want both batches", n)
	}
	t.Logf("the next writer stored its batch after %v", took.Round(100*time.Millisecond))
}

// An order stored by another transaction between a batch's probe and its
// COPY fails the COPY; the batch is done again through ON CONFLICT, and every
// order ends up stored once, with the right fate.
func TestWriteBatchSettlesAnOrderStoredBetweenProbeAndCopy(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	dbURL := dbtest.NewMigrated(t)
	st, other := openStore(t, dbURL), openStore(t, dbURL)
	if _, err := st.WriteBatch(ctx, store.Batch{Group: "g", Rows: rows(0, "A"), Offsets: offsets(0, 1)}); err != nil {
		t.Fatal(err)
	}
	// The next batch meets A and goes to probe mode; B is stored from
	// elsewhere after the probe has found it missing.
	probes := 0
	st.SetAfterProbe(func() {
		probes++
		if probes == 1 {
			if _, err := other.WriteBatch(ctx, store.Batch{Rows: rows(2, "B")}); err != nil {
				t.Error(err)
			}
		}
	})
	res, err := st.WriteBatch(ctx, store.Batch{Group: "g", Rows: rows(1, "A", "B", "C"), Offsets: offsets(1, 4)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 1 || !equal(ids(res.Duplicates), []string{"A", "B"}) || len(res.Conflicts) != 0 {
		t.Errorf("result %+v: want C inserted, A and B duplicates", res)
	}
	if probes != 1 {
		t.Errorf("%d probes, want 1 (then the staging table)", probes)
	}
	if n, _ := st.Count(ctx); n != 3 {
		t.Errorf("Count = %d, want 3", n)
	}
}

// openStore opens a store on dbURL, closed when the test ends.
func openStore(t *testing.T, dbURL string) *store.Store {
	t.Helper()
	st, err := store.Open(ctxFor(t), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}
