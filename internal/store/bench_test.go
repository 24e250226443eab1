package store_test

import (
	"fmt"
	"sync"
	"testing"

	"foodpipe/internal/store"
	"foodpipe/internal/store/dbtest"
)

const benchBatch = 1000

// BenchmarkWriteBatch stores batches of 1000 orders with their offsets, as
// the consumer does, and reports rows/s:
//
//   - writers=1: one consumer's batches, one after the other;
//   - writers=2: two consumers' batches at once, on other partitions (this
//     machine has two cores for Go and PostgreSQL together);
//   - redelivered: every order is stored already, so each batch takes the
//     safe path and ends as 1000 duplicates;
//   - half-stored: every other run of 50 orders is stored already (a replay
//     after a lost commit), so each batch stores 500 and finds 500.
func BenchmarkWriteBatch(b *testing.B) {
	cases := []struct {
		name    string
		writers int
		stored  func(j int) bool // which orders of a batch are stored before
	}{
		{"writers=1", 1, nil},
		{"writers=2", 2, nil},
		{"redelivered", 1, func(int) bool { return true }},
		{"half-stored", 1, func(j int) bool { return j/50%2 == 0 }},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			st := dbtest.NewStore(b)
			ctx := ctxFor(b)
			perWriter := (b.N + bc.writers - 1) / bc.writers
			batches := make([][]store.Batch, bc.writers)
			for w := range bc.writers {
				for i := range perWriter {
					bt := store.Batch{Group: "bench", Rows: make([]store.Row, benchBatch),
						Offsets: []store.PartitionOffset{{Topic: "orders", Partition: int32(w), From: int64(i * benchBatch), Next: int64((i + 1) * benchBatch)}}}
					for j := range bt.Rows {
						off := int64(i*benchBatch + j)
						bt.Rows[j] = store.Row{Order: newOrder(fmt.Sprintf("ORD-%d-%09d", w, off), 2147), Partition: int32(w), Offset: off}
					}
					batches[w] = append(batches[w], bt)
				}
			}
			want := benchBatch
			if bc.stored != nil {
				for _, bt := range batches[0] {
					var before []store.Row
					for j, r := range bt.Rows {
						if bc.stored(j) {
							before = append(before, r)
						}
					}
					if _, err := st.WriteBatch(ctx, store.Batch{Rows: before}); err != nil {
						b.Fatal(err)
					}
					want = benchBatch - len(before)
				}
			}

			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range bc.writers {
				wg.Go(func() {
					for _, bt := range batches[w] {
						res, err := st.WriteBatch(ctx, bt)
						if err != nil || res.Inserted != want {
							b.Errorf("WriteBatch: %d inserted, want %d: %v", res.Inserted, want, err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			rows := float64(bc.writers * perWriter * benchBatch)
			b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
