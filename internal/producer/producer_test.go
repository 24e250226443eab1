package producer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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
	m := telemetry.NewMetrics(telemetry.Options{})
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

// stepping is a clock for tests: it starts at a fixed instant and moves
// 1.5 ms per reading.
func stepping() func() time.Time {
	t := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(1500 * time.Microsecond)
		return t
	}
}

func TestRunWritesEachOrderAsItsJSONKeyedByCustomerWithItsIDInAHeader(t *testing.T) {
	for _, withOnAck := range []bool{false, true} {
		name := "without OnAck"
		if withOnAck {
			name = "with OnAck"
		}
		t.Run(name, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Options(3, 10*time.Second, time.Millisecond)...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			const n = 500
			p := New(cl, order.NewGenerator(9, stepping()), Config{Topic: "orders", Count: n}, slog.New(slog.DiscardHandler))
			acked := 0
			if withOnAck {
				p.OnAck = func(o order.Order, r *kgo.Record) {
					if string(r.Value) != string(o.AppendJSON(nil)) {
						t.Errorf("OnAck got order %s with record %s", o.OrderID, r.Value)
					}
					acked++
				}
			}
			if err := p.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			if withOnAck && acked != n {
				t.Errorf("OnAck called %d times, want %d", acked, n)
			}

			want := map[string]order.Order{}
			g := order.NewGenerator(9, stepping())
			for range n {
				o := g.Next()
				want[o.OrderID] = o
			}
			rd, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("orders"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for seen := 0; seen < n; {
				fs := rd.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatalf("after %d records: %v", seen, err)
				}
				fs.EachRecord(func(r *kgo.Record) {
					seen++
					if len(r.Headers) != 1 || r.Headers[0].Key != order.HeaderOrderID {
						t.Fatalf("headers %v, want one %s", r.Headers, order.HeaderOrderID)
					}
					o, ok := want[string(r.Headers[0].Value)]
					if !ok {
						t.Fatalf("order id %s was not generated, or came twice", r.Headers[0].Value)
					}
					delete(want, o.OrderID)
					if string(r.Key) != o.CustomerID || string(r.Value) != string(o.AppendJSON(nil)) {
						t.Errorf("record key %s value %s, want %s and %s", r.Key, r.Value, o.CustomerID, o.AppendJSON(nil))
					}
				})
			}
		})
	}
}

func TestRunStopsAtAFailedPublishAndLogsItsOrderID(t *testing.T) {
	// The topic does not exist and the broker does not create topics: the
	// client gives its records up after one more look at the metadata,
	// taken at once rather than after the default 5 s.
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts := append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.UnknownTopicRetries(1), kgo.MetadataMinAge(10 * time.Millisecond)}, Options(0, 10*time.Second, time.Millisecond)...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var logs bytes.Buffer
	p := New(cl, order.NewGenerator(4, stepping()), Config{Topic: "orders", Count: 10}, slog.New(slog.NewJSONHandler(&logs, nil)))
	err = p.Run(context.Background())
	first := order.NewGenerator(4, stepping()).Next().OrderID
	if !errors.Is(err, kerr.UnknownTopicOrPartition) || !strings.HasPrefix(err.Error(), "publish order ORD-") {
		t.Fatalf("Run() = %v, want publish order ...: %v", err, kerr.UnknownTopicOrPartition)
	}
	if s := p.Stats(); s.Failed == 0 || s.Acked != 0 {
		t.Errorf("stats = %+v, want failures and no acknowledgement", s)
	}
	var line struct {
		Msg     string `json:"msg"`
		OrderID string `json:"order_id"`
	}
	if err := json.NewDecoder(&logs).Decode(&line); err != nil || line.Msg != "publish failed" || line.OrderID != first {
		t.Errorf("first log line %+v (%v), want publish failed for %s", line, err, first)
	}
}

func TestLingerForARate(t *testing.T) {
	tests := []struct {
		name string
		rate float64
		want time.Duration
	}{
		{"as fast as the broker takes them: none", 0, 0},
		{"one order a second: the most, a second", 1, time.Second},
		{"10 orders/s: ten orders, a second", 10, time.Second},
		{"20 orders/s: ten orders, 500 ms", 20, 500 * time.Millisecond},
		{"100 orders/s: ten orders, 100 ms", 100, 100 * time.Millisecond},
		{"500 orders/s: ten orders, 20 ms", 500, 20 * time.Millisecond},
		{"just under 1,000 orders/s: ten orders, about 10 ms", 999, 10010010 * time.Nanosecond},
		{"1,000 orders/s, where the p99 target is 5 ms: none", 1000, 0},
		{"10,000 orders/s: none", 10000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LingerFor(tt.rate); got != tt.want {
				t.Errorf("LingerFor(%v) = %v, want %v", tt.rate, got, tt.want)
			}
		})
	}
}

// At a steady rate with a linger, the producer wakes once a linger and
// hands over the orders due meanwhile together: a request carries several,
// each order is created at the moment it was due (the schedule, not the
// hand-over), and its record's timestamp, the hand-over, is up to a linger
// later, so the latency measured from created_at counts the wait.
func TestASteadyProducerGathersTheOrdersDueWithinALinger(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var requests atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		requests.Add(1)
		return nil, nil, false
	})
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Options(3, 10*time.Second, 0)...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const (
		n      = 30
		rate   = 50 // an order every 20 ms
		linger = 200 * time.Millisecond
	)
	var records []*kgo.Record
	var orders []order.Order
	p := New(cl, order.NewGenerator(3, nil), Config{Topic: "orders", Rate: rate, Count: n, Linger: linger}, slog.New(slog.DiscardHandler))
	p.OnAck = func(o order.Order, r *kgo.Record) {
		records, orders = append(records, r), append(orders, o)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(orders) != n {
		t.Fatalf("%d orders acknowledged, want %d", len(orders), n)
	}
	// Ten orders are due within a linger: three or four hand-overs, each
	// in a request or a few (the client may send the first order of a
	// hand-over before the rest are buffered). One order a request is 30.
	if got := requests.Load(); got > 12 {
		t.Errorf("%d produce requests for %d orders, want a few orders a request", got, n)
	}
	slices.SortFunc(orders, func(a, b order.Order) int { return a.CreatedAt.Compare(b.CreatedAt) })
	gap := time.Second / rate
	var longest time.Duration
	for i, o := range orders {
		if want := orders[0].CreatedAt.Add(time.Duration(i) * gap); o.CreatedAt.Sub(want).Abs() > time.Microsecond {
			t.Errorf("order %d created at %v, want its moment on the schedule, %v", i, o.CreatedAt, want)
		}
	}
	for i, r := range records {
		waited := r.Timestamp.Sub(orders[slices.IndexFunc(orders, func(o order.Order) bool { return o.OrderID == orderIDOf(r) })].CreatedAt)
		if waited < -time.Millisecond { // Kafka keeps milliseconds
			t.Errorf("record %d handed over %v before its order was created", i, -waited)
		}
		longest = max(longest, waited)
	}
	if longest < linger-gap || longest > linger+time.Second {
		t.Errorf("the longest an order waited to be handed over was %v, want about the linger, %v", longest, linger)
	}
}

// The broker takes a request and never answers it (it went away mid-request):
// the client cannot fail those orders, for it cannot know whether the broker
// wrote them. Told to stop, the producer still stops within its stop budget,
// and says how many orders are in doubt.
func TestAStopWhileTheBrokerHoldsARequestEndsWithTheOrdersInDoubt(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	defer c.Close()
	defer close(hold)
	var answered atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if answered.Add(1) <= 3 {
			return nil, nil, false // the first requests are answered
		}
		c.SleepControl(func() { <-hold })
		return nil, errors.New("gone"), true
	})
	opts := append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Options(0, 30*time.Second, 0)...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var logs bytes.Buffer
	p := New(cl, order.NewGenerator(5, stepping()), Config{Topic: "orders", Rate: 50}, slog.New(slog.NewJSONHandler(&logs, nil)))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for answered.Load() < 4 { // the fourth is held
		if time.Now().After(deadline) {
			t.Fatal("the producer sent no request past the answered ones")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	select {
	case err = <-done:
	case <-time.After(stopFlushWait + 10*time.Second):
		t.Fatalf("the producer did not stop within %v of being told to", stopFlushWait+10*time.Second)
	}
	s := p.Stats()
	if inDoubt := s.Generated - s.Acked - s.Failed; err == nil || inDoubt == 0 || !strings.Contains(err.Error(), fmt.Sprintf("%d orders not acknowledged", inDoubt)) {
		t.Errorf("Run() = %v with %+v, want an error counting the orders in doubt", err, s)
	}
	if !strings.Contains(logs.String(), `"msg":"orders handed to Kafka were not acknowledged in time`) {
		t.Errorf("no line about the orders in doubt:\n%s", logs.String())
	}
}
