package producer

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/order"
	"foodpipe/internal/telemetry"
)

func TestRunPublishesCountOrdersKeyedByCustomerAndCountsThem(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Options(3, 10*time.Second, 5*time.Millisecond)...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	m := telemetry.NewMetrics()
	p := New(cl, order.NewGenerator(1, nil), Config{Topic: "orders", Count: 25, Metrics: m}, slog.New(slog.DiscardHandler))
	partitionOf := map[string]int32{}
	p.OnAck = func(o order.Order, r *kgo.Record) {
		if string(r.Key) != o.CustomerID {
			t.Errorf("key %q, want the customer id %q", r.Key, o.CustomerID)
		}
		if prev, ok := partitionOf[o.CustomerID]; ok && prev != r.Partition {
			t.Errorf("customer %s on partitions %d and %d", o.CustomerID, prev, r.Partition)
		}
		partitionOf[o.CustomerID] = r.Partition
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Generated != 25 || s.Acked != 25 || s.Failed != 0 {
		t.Errorf("stats = %+v, want 25 generated and acknowledged", s)
	}
	if got := testutil.ToFloat64(m.OrdersProduced); got != 25 {
		t.Errorf("foodpipe_orders_produced_total = %v, want 25", got)
	}
}
