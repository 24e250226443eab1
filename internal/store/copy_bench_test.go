package store

import (
	"testing"

	"foodpipe/internal/order"
)

// BenchmarkEncodeCopy encodes a batch of 1000 generated orders into the
// binary COPY stream the consumer sends, and reports ns and bytes per row.
func BenchmarkEncodeCopy(b *testing.B) {
	gen := order.NewGenerator(1, nil)
	rows := make([]Row, 1000)
	for i := range rows {
		rows[i] = Row{Order: gen.Next(), Partition: int32(i % 3), Offset: int64(i)}
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = beginCopy(buf)
		for i := range rows {
			buf = appendRow(buf, &rows[i])
		}
		buf = endCopy(buf)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
	b.ReportMetric(float64(len(buf))/float64(len(rows)), "bytes/row")
}
