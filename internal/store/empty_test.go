package store_test

import (
	"testing"
	"time"

	"foodpipe/internal/store"
	"foodpipe/internal/store/dbtest"
)

// Empty leaves every table the migrations made without a row, whatever
// tables a later migration adds, and keeps the schema and the migrations'
// record: the database is as a new one, ready for the next run.
func TestEmptyLeavesEveryTableWithoutARowAndTheSchemaInPlace(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	st := dbtest.NewStore(t)

	b := store.Batch{Group: "g", Rows: rows(2, "E1", "E2"), Offsets: offsets(0, 4),
		Dead:    []store.DeadLetter{{Scope: "orders", Topic: "orders", Offset: 1, Reason: "not_json", Error: "not json", Value: []byte("x"), FailedAt: time.Now()}},
		Expired: []store.ExpiredRange{{Topic: "orders", Partition: 0, From: 0, To: 0}}}
	if _, err := st.WriteBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Analytics().WriteBatch(ctx, store.Batch{Group: "a", Rows: rows(0, "E1", "E2"), Offsets: offsets(0, 2)}); err != nil {
		t.Fatal(err)
	}

	counts := func(t *testing.T) map[string]int64 {
		t.Helper()
		tables, err := st.Pool().Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'goose_db_version'`)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for tables.Next() {
			var n string
			if err := tables.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		if err := tables.Err(); err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, n := range names {
			var c int64
			if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM "`+n+`"`).Scan(&c); err != nil {
				t.Fatal(err)
			}
			out[n] = c
		}
		return out
	}
	before := counts(t)
	for _, n := range []string{"orders", "consumer_offsets", "dead_letters", "expired_offsets", "analytics_minute"} {
		if before[n] == 0 {
			t.Fatalf("table %s has no row before Empty: the test writes too little (%v)", n, before)
		}
	}

	if err := st.Empty(ctx); err != nil {
		t.Fatal(err)
	}
	for n, c := range counts(t) {
		if c != 0 {
			t.Errorf("table %s has %d rows after Empty, want none", n, c)
		}
	}
	if err := st.MigrateUp(ctx); err != nil {
		t.Errorf("MigrateUp after Empty: %v", err)
	}
	if _, err := st.WriteBatch(ctx, store.Batch{Group: "g", Rows: rows(0, "E1"), Offsets: offsets(0, 1)}); err != nil {
		t.Errorf("a batch from offset 0 after Empty: %v", err)
	}
}
