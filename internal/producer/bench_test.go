package producer

import (
	"context"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/order"
)

// benchClient starts an in-process broker with a three-partition topic and
// returns a client on it with the producer's options and a 5 ms linger.
func benchClient(b *testing.B) *kgo.Client {
	b.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Options(3, 30*time.Second, 5*time.Millisecond)...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	return cl
}

// BenchmarkRun is `foodpipe produce --rate 0`: generate, encode and publish
// b.N orders, waiting for every acknowledgement. Its broker runs in the
// same process, so the figure is the producer and broker together; compare
// it with BenchmarkClientPreEncoded, the client alone on the same records.
func BenchmarkRun(b *testing.B) {
	cl := benchClient(b)
	p := New(cl, order.NewGenerator(1, nil), Config{Topic: "orders", Count: b.N}, slog.New(slog.DiscardHandler))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	if err := p.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	reportCPU(b, cpu)
}

// BenchmarkClientPreEncoded is the client's limit that BenchmarkRun is held
// against (measure's producerLimit does the same): the records of the same
// orders, made beforehand, produced with the same settings.
func BenchmarkClientPreEncoded(b *testing.B) {
	cl := benchClient(b)
	gen := order.NewGenerator(1, nil)
	recs := make([]*kgo.Record, b.N)
	for i := range recs {
		o := gen.Next()
		recs[i] = &kgo.Record{Topic: "orders", Key: []byte(o.CustomerID), Value: o.AppendJSON(nil),
			Headers: []kgo.RecordHeader{{Key: order.HeaderOrderID, Value: []byte(o.OrderID)}}}
	}
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for _, rec := range recs {
		wg.Add(1)
		cl.Produce(context.Background(), rec, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	reportCPU(b, cpu)
}

// cpuTime is the CPU time the process has used so far, user and system.
func cpuTime() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// reportCPU adds the CPU time per order since start, on every core: on a
// busy machine it holds steadier than the time per order.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkMakeRecord is the producer's own work per order, without the
// client or a broker: make the order, encode it, make its record.
func BenchmarkMakeRecord(b *testing.B) {
	g := order.NewGenerator(1, nil)
	var o order.Order
	records := &recordMaker{topic: "orders"}
	b.ReportAllocs()
	for b.Loop() {
		records.next(g, &o, time.Time{})
	}
}
