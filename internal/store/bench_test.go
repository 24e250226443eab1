package store_test

import (
	"fmt"
	"sync"
	"testing"

	"foodpipe/internal/store"
	"foodpipe/internal/store/dbtest"
)

const benchBatch = 1000

// BenchmarkWriteBatch stores batches of 1000 new orders with their offsets,
// as the consumer does, and reports rows/s. "writers=2" runs two consumers'
// worth of batches at once on different partitions (this machine has two
// cores for both Go and PostgreSQL).
func BenchmarkWriteBatch(b *testing.B) {
	for _, writers := range []int{1, 2} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			st := dbtest.NewStore(b)
			ctx := ctxFor(b)
			batches := make([][]store.Batch, writers)
			for w := range writers {
				for i := range (b.N + writers - 1) / writers {
					bt := store.Batch{Group: "bench", Rows: make([]store.Row, benchBatch),
						Offsets: []store.PartitionOffset{{Topic: "orders", Partition: int32(w), From: int64(i * benchBatch), Next: int64((i + 1) * benchBatch)}}}
					for j := range bt.Rows {
						off := int64(i*benchBatch + j)
						bt.Rows[j] = store.Row{Order: newOrder(fmt.Sprintf("ORD-%d-%09d", w, off), 2147), Partition: int32(w), Offset: off}
					}
					batches[w] = append(batches[w], bt)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for _, bt := range batches[w] {
						res, err := st.WriteBatch(ctx, bt)
						if err != nil || res.Inserted != benchBatch {
							b.Errorf("WriteBatch: %+v, %v", res.Inserted, err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			rows := float64(writers * len(batches[0]) * benchBatch)
			b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
