package consumer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"foodpipe/internal/config"
	"foodpipe/internal/dlq"
	"foodpipe/internal/kafka"
	"foodpipe/internal/order"
	"foodpipe/internal/store"
	"foodpipe/internal/store/dbtest"
)

const (
	topic    = "orders"
	dlqTopic = "orders.dlq"
	group    = "test-group"
)

type cluster struct {
	*kfake.Cluster
	addr string
}

func newCluster(t *testing.T, partitions int32) *cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic), kfake.SeedTopics(1, dlqTopic),
		kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &cluster{c, c.ListenAddrs()[0]}
}

func (c *cluster) produce(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// produceRoundRobin produces n generated orders over three partitions in
// turn, whatever their keys.
func (c *cluster) produceRoundRobin(t *testing.T, seed uint64, n int) {
	t.Helper()
	_, recs := orders(seed, n)
	for i, r := range recs {
		r.Partition = int32(i % 3)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) read(t *testing.T, from string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.ConsumeTopics(from), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		out = append(out, cl.PollFetches(ctx).Records()...)
	}
	return out
}

func orders(seed uint64, n int) ([]order.Order, []*kgo.Record) {
	g := order.NewGenerator(seed, nil)
	var os []order.Order
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		o := g.Next()
		os = append(os, o)
		recs = append(recs, &kgo.Record{Key: []byte(o.CustomerID), Value: o.AppendJSON(nil)})
	}
	return os, recs
}

type logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logs) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// member starts a consumer in the group and stops it at the end of the test.
func member(t *testing.T, c *cluster, st Store, id string, w io.Writer) (*Consumer, context.CancelFunc) {
	t.Helper()
	return memberWith(t, c, st, id, w, func(*Config) {})
}

// memberWith is member with the configuration changed by tweak.
func memberWith(t *testing.T, c *cluster, st Store, id string, w io.Writer, tweak func(*Config)) (*Consumer, context.CancelFunc) {
	t.Helper()
	cfg := testConfig(id, group)
	tweak(&cfg)
	return runMember(t, c, st, cfg, slog.New(slog.NewJSONHandler(w, nil)), nil)
}

// testConfig is a member's configuration in these tests: every setting
// given, as New wants; small batches, one retry, and a short session, so that
// a test's rebalances take seconds.
func testConfig(id, grp string) Config {
	return Config{
		ID: id, Group: grp, Topic: topic, DLQTopic: dlqTopic, BatchSize: 100, Writers: 3, DBRetries: 1,
		SessionTimeout: 2 * time.Second, GroupProtocol: config.GroupProtocolClassic, FetchMaxWait: 250 * time.Millisecond, FetchMinBytes: 1, ShutdownTimeout: 5 * time.Second,
	}
}

// runMember runs a consumer with cfg, logging to log, and its Kafka client
// to clientLog when it is not nil, until the returned func or the end of
// the test stops it.
func runMember(t *testing.T, c *cluster, st Store, cfg Config, log, clientLog *slog.Logger) (*Consumer, context.CancelFunc) {
	t.Helper()
	cons, err := New(kafka.ClientOpts(kafka.Options{Brokers: []string{c.addr}, ClientID: cfg.ID, Logger: clientLog}), st, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: Run returned %v", cfg.ID, err)
			}
		})
	}
	t.Cleanup(stop)
	return cons, stop
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// awaitCounted waits until counted holds: a member counts a batch once its
// transaction has returned, a moment after the rows are there to be seen.
func awaitCounted(t *testing.T, counted func() bool) {
	t.Helper()
	eventually(t, "the members to count what they stored", counted)
}

func count(t *testing.T, st *store.Store) int64 {
	t.Helper()
	n, err := st.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Any bytes on the topic: the invalid ones go to the dead-letter topic with
// their reason and original bytes, every valid order around them is stored.
func TestHostileInputGoesToTheDeadLetterTopicAndValidOrdersAroundItAreStored(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	st := dbtest.NewStore(t)
	valid, good := orders(1, 3)
	base := string(valid[0].AppendJSON(nil))
	swap := func(old, new string) []byte {
		if !strings.Contains(base, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return []byte(strings.Replace(base, old, new, 1))
	}
	price := valid[0].Items[0].Price.String()
	qty := `"quantity":` + itoa(valid[0].Items[0].Quantity)
	total := `"total_amount":` + valid[0].TotalAmount.String()
	hostile := []struct {
		name   string
		value  []byte
		key    []byte
		reason string
	}{
		{"not JSON", []byte("hello"), []byte("k"), "not_json"},
		{"a JSON array", []byte("[1,2]"), []byte("k"), "not_json"},
		{"wrong JSON type", swap(qty, `"quantity":"2"`), []byte("k"), "wrong_type"},
		{"a missing field", []byte(`{"order_id":"ORD-1"}`), []byte("k"), "missing_field"},
		{"NaN", swap(total, `"total_amount":NaN`), []byte("k"), "not_json"},
		{"a zero quantity", swap(qty, `"quantity":0`), []byte("k"), "invalid_quantity"},
		{"a negative quantity", swap(qty, `"quantity":-1`), []byte("k"), "invalid_quantity"},
		{"a fractional quantity", swap(qty, `"quantity":1.5`), []byte("k"), "invalid_quantity"},
		{"a price with three decimals", swap(`"price":`+price, `"price":`+price+`1`), []byte("k"), "invalid_price"},
		{"a total off by a cent", swap(total, `"total_amount":`+(valid[0].TotalAmount+1).String()), []byte("k"), "total_mismatch"},
		{"an amount too large for NUMERIC(10,2)", swap(total, `"total_amount":100000000.00`), []byte("k"), "invalid_total"},
		{"an over-long id", swap(valid[0].OrderID, strings.Repeat("X", 51)), []byte("k"), "invalid_id"},
		{"a NUL character", swap(valid[0].CustomerID, `CUST\u0000`), []byte("k"), "invalid_text"},
		{"invalid UTF-8", swap(valid[0].CustomerID, "CUST\xff"), []byte("k"), "invalid_utf8"},
		{"an empty item list", swap(`"items":[`, `"items":[],"x":[`), []byte("k"), "no_items"},
		{"deeply nested JSON", []byte(strings.Repeat("[", 100000)), []byte("k"), "not_json"},
		{"a null value (tombstone)", nil, []byte("k"), "empty_value"},
		{"a null field", swap(`"status":"pending"`, `"status":null`), []byte("k"), "missing_field"},
	}
	var recs []*kgo.Record
	recs = append(recs, good[0])
	for _, h := range hostile {
		recs = append(recs, &kgo.Record{Key: h.key, Value: h.value})
	}
	recs = append(recs, good[1])
	// A valid order without a key still lands (on some partition) and is stored.
	recs = append(recs, &kgo.Record{Value: good[2].Value})
	c.produce(t, recs...)

	var l logs
	cons, stop := member(t, c, st, "c1", &l)
	eventually(t, "the valid orders to be stored", func() bool { return count(t, st) == 3 })
	dead := c.read(t, dlqTopic, len(hostile))
	stop()
	if len(dead) != len(hostile) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(hostile))
	}
	for i, h := range hostile {
		t.Run(h.name+" is a dead letter with its reason and original bytes", func(t *testing.T) {
			d := dead[i]
			if got := header(d, dlq.HeaderReason); got != h.reason {
				t.Errorf("reason %q, want %q (error: %s)", got, h.reason, header(d, dlq.HeaderError))
			}
			if !bytes.Equal(d.Value, h.value) || !bytes.Equal(d.Key, h.key) {
				t.Errorf("value or key changed: %q", d.Value)
			}
			if header(d, dlq.HeaderSourceOffset) != itoa(i+1) || header(d, dlq.HeaderSourceTopic) != topic {
				t.Errorf("source %s@%s", header(d, dlq.HeaderSourceTopic), header(d, dlq.HeaderSourceOffset))
			}
		})
	}
	if s := cons.Stats(); s.Processed != 3 || s.Invalid != int64(len(hostile)) {
		t.Errorf("stats %+v", s)
	}
	m := cons.cfg.Metrics
	byReason := map[string]float64{}
	for _, h := range hostile {
		byReason[h.reason]++
	}
	for reason, n := range byReason {
		if got := testutil.ToFloat64(m.OrdersInvalid.WithLabelValues(reason)); got != n {
			t.Errorf("foodpipe_orders_invalid_total{reason=%q} = %v, want %v", reason, got, n)
		}
	}
	if got := testutil.ToFloat64(m.DLQ); got != float64(len(hostile)) {
		t.Errorf("foodpipe_dlq_total = %v, want %d", got, len(hostile))
	}
	if got := testutil.ToFloat64(m.OrdersProcessed); got != 3 {
		t.Errorf("foodpipe_orders_processed_total = %v, want 3", got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// An order_id seen again with other content never overwrites the stored
// order: it is a dead letter of its own reason. An exact re-delivery is only counted.
func TestConflictingDuplicatesNeverOverwriteAndExactOnesAreOnlyCounted(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	st := dbtest.NewStore(t)
	os, recs := orders(2, 2)
	changed := os[0]
	changed.Status = order.StatusCancelled
	c.produce(t, recs[0], recs[1],
		&kgo.Record{Key: recs[0].Key, Value: recs[0].Value},           // exact re-delivery
		&kgo.Record{Key: recs[0].Key, Value: changed.AppendJSON(nil)}) // same id, other content

	cons, stop := member(t, c, st, "c1", io.Discard)
	eventually(t, "all four records to be handled", func() bool {
		s := cons.Stats()
		return s.Processed+s.Duplicates+s.Invalid == 4
	})
	dead := c.read(t, dlqTopic, 1)
	stop()
	if s := cons.Stats(); s.Processed != 2 || s.Duplicates != 1 || s.Invalid != 1 {
		t.Errorf("stats %+v, want 2 stored, 1 duplicate, 1 invalid", s)
	}
	if len(dead) != 1 || header(dead[0], dlq.HeaderReason) != dlq.ReasonConflict || !bytes.Equal(dead[0].Value, changed.AppendJSON(nil)) {
		t.Fatalf("dead letters %v", dead)
	}
	var status string
	if err := st.Pool().QueryRow(context.Background(), "SELECT status FROM orders WHERE order_id = $1", os[0].OrderID).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if status != string(os[0].Status) {
		t.Errorf("stored status became %q", status)
	}
	m := cons.cfg.Metrics
	for name, c := range map[string]struct{ got, want float64 }{
		"foodpipe_orders_processed_total":                               {testutil.ToFloat64(m.OrdersProcessed), 2},
		"foodpipe_orders_duplicate_total":                               {testutil.ToFloat64(m.OrdersDuplicate), 1},
		`foodpipe_orders_invalid_total{reason="conflicting_duplicate"}`: {testutil.ToFloat64(m.OrdersInvalid.WithLabelValues(dlq.ReasonConflict)), 1},
		"foodpipe_dlq_total":                                            {testutil.ToFloat64(m.DLQ), 1},
		"foodpipe_db_breaker_open":                                      {testutil.ToFloat64(m.BreakerOpen), 0},
		`foodpipe_consumer_lag{partition="0"}`:                          {testutil.ToFloat64(m.ConsumerLag.WithLabelValues("0")), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", name, c.got, c.want)
		}
	}
	// Only the two newly stored orders count towards latency; the batches
	// and the assignment were observed.
	if n := histogramOf(t, m.E2ELatency).GetSampleCount(); n != 2 {
		t.Errorf("foodpipe_e2e_latency_seconds_count = %d, want 2", n)
	}
	// From the records' timestamps, which the producer set moments ago.
	if d := histogramOf(t, m.DeliveryLatency); d.GetSampleCount() != 2 || d.GetSampleSum() <= 0 || d.GetSampleSum() > 60 {
		t.Errorf("foodpipe_delivery_latency_seconds count %d, sum %v s, want 2 and a few seconds at most", d.GetSampleCount(), d.GetSampleSum())
	}
	if n := histogramOf(t, m.DBBatchSeconds).GetSampleCount(); n < 1 {
		t.Errorf("foodpipe_db_batch_seconds_count = %d, want at least 1", n)
	}
	if got := testutil.ToFloat64(m.Rebalances); got < 1 {
		t.Errorf("foodpipe_rebalances_total = %v, want at least the first assignment", got)
	}
}

// histogramOf returns what h holds.
func histogramOf(t *testing.T, h prometheus.Histogram) *dto.Histogram {
	t.Helper()
	var pb dto.Metric
	if err := h.Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.GetHistogram()
}

// gatedStore holds the first write until released, as a consumer paused by
// a long stall would.
type gatedStore struct {
	Store
	once             sync.Once
	entered, release chan struct{}
}

func (g *gatedStore) WriteBatch(ctx context.Context, b store.Batch) (store.Result, error) {
	g.once.Do(func() { close(g.entered); <-g.release })
	return g.Store.WriteBatch(ctx, b)
}

// A consumer that loses its group membership while stalled (its heartbeats
// stop reaching the coordinator) must not write the batch it holds once it
// wakes: another member owns the partition and has stored it.
func TestAZombieConsumerWritesNothingForPartitionsItLost(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	st := dbtest.NewStore(t)
	_, recs := orders(3, 20)
	c.produce(t, recs...)

	gate := &gatedStore{Store: st, entered: make(chan struct{}), release: make(chan struct{})}
	var zl logs
	zombie, stopZombie := member(t, c, gate, "zombie", &zl)
	<-gate.entered
	memberID, _ := zombie.group.Load().GroupMetadata()
	// The zombie's heartbeats are lost from now on: the coordinator will
	// expire its session and give its partition to the other member.
	c.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if hb, ok := req.(*kmsg.HeartbeatRequest); ok && hb.MemberID == memberID {
			return nil, errors.New("heartbeat lost"), true
		}
		return nil, nil, false
	})

	heir, stopHeir := member(t, c, st, "heir", io.Discard)
	eventually(t, "the heir to store the partition", func() bool { return count(t, st) == 20 })
	close(gate.release)
	eventually(t, "the offset fence to refuse the zombie's batch", func() bool {
		return testutil.ToFloat64(zombie.cfg.Metrics.Fenced) >= 1
	})
	stopZombie()
	stopHeir()

	if s := zombie.Stats(); s.Processed != 0 || s.Duplicates != 0 {
		t.Errorf("zombie wrote: %+v", s)
	}
	if s := heir.Stats(); s.Processed != 20 {
		t.Errorf("heir stored %d, want 20", s.Processed)
	}
	offs, err := st.Offsets(context.Background(), group, heir.scope.Load().name)
	if err != nil {
		t.Fatal(err)
	}
	if offs[0] != 20 {
		t.Errorf("stored offset %d, want 20", offs[0])
	}
}

// The observer hears every assignment change and every stored batch, as
// they happen, with the member's name.
func TestTheObserverHearsAssignmentsAndStoredBatches(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	st := dbtest.NewStore(t)
	_, recs := orders(13, 30)
	c.produce(t, recs...)
	var mu sync.Mutex
	var assigned []Assigned
	stored := map[int32]int{}
	_, stop := memberWith(t, c, st, "c1", io.Discard, func(cfg *Config) {
		cfg.Observe = func(e Event) {
			mu.Lock()
			defer mu.Unlock()
			if e.Who() != "c1" {
				t.Errorf("event %+v names %q", e, e.Who())
			}
			switch e := e.(type) {
			case Assigned:
				assigned = append(assigned, e)
			case BatchStored:
				stored[e.Partition] += e.Inserted
			}
		}
	})
	eventually(t, "every order stored", func() bool { return count(t, st) == 30 })
	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(assigned) < 2 || !slices.Equal(assigned[0].Owned, []int32{0, 1, 2}) || len(assigned[len(assigned)-1].Owned) != 0 {
		t.Errorf("assignments %+v, want all three partitions first and none after leaving", assigned)
	}
	total := 0
	for _, n := range stored {
		total += n
	}
	if total != 30 || len(stored) != 3 {
		t.Errorf("stored batches report %v, want 30 orders over 3 partitions", stored)
	}
}

// bigInvalidOrder is an order of exactly size bytes whose total is off by a
// cent: valid JSON, padded with an unknown field, refused as total_mismatch
// (or not_json beyond the decoder's size limit).
func bigInvalidOrder(t *testing.T, o order.Order, size int) []byte {
	t.Helper()
	o.TotalAmount++
	head := o.AppendJSON(nil)
	head = append(head[:len(head)-1], `,"pad":"`...)
	pad := size - len(head) - len(`"}`)
	if pad < 0 {
		t.Fatalf("size %d is too small for an order", size)
	}
	return append(append(head, bytes.Repeat([]byte("x"), pad)...), `"}`...)
}

// largestAccepted finds the largest value the broker takes in one record.
func largestAccepted(t *testing.T, c *cluster) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.ProducerBatchMaxBytes(4<<20), kgo.RecordDeliveryTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, nil, "size-probe"); err != nil {
		t.Fatal(err)
	}
	lo, hi := 900_000, 1_100_000 // accepted, refused
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "size-probe", Value: make([]byte, lo)}).FirstErr(); err != nil {
		t.Fatalf("the broker refuses %d bytes: %v", lo, err)
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "size-probe", Value: make([]byte, mid)}).FirstErr()
		if err == nil {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// A message just under the broker's limit, and one exactly at it, are
// invalid: their dead letters, with the headers the consumer adds, cannot
// fit in the dead-letter topic. Each is kept whole in the database, the
// topic gets a cut-down copy that says so and where the whole one is, and
// the partition moves on: the valid orders around them are stored.
func TestADeadLetterTooLargeForTheTopicIsCutDownAndThePartitionMovesOn(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	c := newCluster(t, 1)
	st := dbtest.NewStore(t)
	limit := largestAccepted(t, c)
	valid, good := orders(9, 3)
	sizes := []int{limit - 100, limit}
	recs := []*kgo.Record{good[0],
		{Key: []byte("k"), Value: bigInvalidOrder(t, valid[0], sizes[0])}, good[1],
		{Key: []byte("k"), Value: bigInvalidOrder(t, valid[0], sizes[1])}, good[2]}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchMaxBytes(4<<20), kgo.MaxBufferedRecords(1))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatalf("produce %d bytes (limit %d): %v", len(r.Value), limit, err)
		}
	}
	cl.Close()

	cons, _ := member(t, c, st, "c1", io.Discard)
	eventually(t, "the valid orders around the large ones to be stored", func() bool { return count(t, st) == 3 })
	dead := c.read(t, dlqTopic, 2)
	if len(dead) != 2 {
		t.Fatalf("%d dead letters on the topic, want 2", len(dead))
	}
	for i, d := range dead {
		h := map[string]string{}
		for _, kv := range d.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if h[dlq.HeaderTruncated] != "true" || h[dlq.HeaderOriginalSize] != strconv.Itoa(sizes[i]) || !strings.HasPrefix(h[dlq.HeaderStoredAs], "dead_letters/") {
			t.Errorf("dead letter %d: headers %v, want a cut-down copy of %d bytes naming its row", i, h, sizes[i])
		}
		if len(d.Value) != dlq.CutValue || !bytes.HasPrefix(recs[2*i+1].Value, d.Value) {
			t.Errorf("dead letter %d: %d bytes, want the first %d of the message", i, len(d.Value), dlq.CutValue)
		}
		var whole int
		id := strings.TrimPrefix(h[dlq.HeaderStoredAs], "dead_letters/")
		if err := st.Pool().QueryRow(context.Background(), "SELECT length(msg_value) FROM dead_letters WHERE id = $1::bigint", id).Scan(&whole); err != nil || whole != sizes[i] {
			t.Errorf("dead letter %d: the database keeps %d bytes (%v), want the whole %d", i, whole, err, sizes[i])
		}
	}
	awaitCounted(t, func() bool { s := cons.Stats(); return s.Processed >= 3 && s.Invalid >= 2 })
	if s := cons.Stats(); s.Invalid != 2 || s.Processed != 3 {
		t.Errorf("stats %+v, want 2 invalid and 3 stored", s)
	}
}

// A column dropped by hand (schema drift) makes the database refuse every
// batch. The consumer does not exit: it pauses, holding the batch, reports
// not ready with the reason and what to do, and goes on by itself once the
// column is back, with nothing lost.
func TestASchemaErrorPausesTheConsumerUntilTheSchemaIsFixed(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	st := dbtest.NewStore(t)
	ctx := context.Background()
	if _, err := st.Pool().Exec(ctx, "ALTER TABLE orders DROP COLUMN status"); err != nil {
		t.Fatal(err)
	}
	_, recs := orders(11, 20)
	c.produce(t, recs...)
	cons, _ := member(t, c, st, "c1", io.Discard)
	eventually(t, "the consumer to report the schema error as not ready", func() bool {
		err := cons.Ready(ctx)
		return err != nil && strings.Contains(err.Error(), "42703") && strings.Contains(err.Error(), "foodpipe migrate up")
	})
	if n := count(t, st); n != 0 {
		t.Fatalf("%d orders stored without their status column", n)
	}
	if _, err := st.Pool().Exec(ctx, "ALTER TABLE orders ADD COLUMN status VARCHAR(20) NOT NULL DEFAULT 'pending'"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every order stored once the column is back", func() bool { return count(t, st) == 20 })
	eventually(t, "the consumer to be ready again", func() bool { return cons.Ready(ctx) == nil })
	if got := testutil.ToFloat64(cons.cfg.Metrics.BreakerOpens); got != 0 {
		t.Errorf("the circuit breaker opened %v times for a schema error", got)
	}
}

// flakyStore fails the first attempts of every batch with a transient error.
type flakyStore struct {
	Store
	fails    int
	mu       sync.Mutex
	attempts map[int32]int // by partition
}

func (f *flakyStore) WriteBatch(ctx context.Context, b store.Batch) (store.Result, error) {
	f.mu.Lock()
	p := b.Offsets[0].Partition
	f.attempts[p]++
	n := f.attempts[p]
	f.mu.Unlock()
	if n <= f.fails {
		return store.Result{}, &pgconn.PgError{Code: "40001", Message: "could not serialize access"}
	}
	return f.Store.WriteBatch(ctx, b)
}

// CONSUMER_DB_RETRIES counts the retries of one batch: three writers whose
// batches each fail as often as allowed, side by side, do not add up to an
// open circuit breaker.
func TestDBRetriesCountPerBatchWhateverTheWriters(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	c := newCluster(t, 3)
	st := dbtest.NewStore(t)
	c.produceRoundRobin(t, 12, 60)
	const retries = 3
	flaky := &flakyStore{Store: st, fails: retries, attempts: map[int32]int{}}
	// Batches of 10: a poll bigger than a batch is written a partition per
	// writer (a smaller one would be a single batch).
	cons, stop := memberWith(t, c, flaky, "c1", io.Discard, func(cfg *Config) { cfg.DBRetries, cfg.Writers, cfg.BatchSize = retries, 3, 10 })
	eventually(t, "every order stored", func() bool { return count(t, st) == 60 })
	stop()
	if got := cons.Stats().Failures; got != 3*retries {
		t.Errorf("%d failed attempts, want %d", got, 3*retries)
	}
	if got := testutil.ToFloat64(cons.cfg.Metrics.BreakerOpens); got != 0 {
		t.Errorf("the circuit breaker opened %v times; no batch failed more than its %d retries", got, retries)
	}
}

// A poll of less than a batch looks once more for what reached the broker
// meanwhile; when nothing comes, it returns what it has, without the error
// its own short wait ends with.
func TestPollTakesTheFollowingFetchAndNoTimeout(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1)
	_, recs := orders(7, 3)
	c.produce(t, recs[0])
	cons, err := New(kafka.ClientOpts(kafka.Options{Brokers: []string{c.addr}}), nil,
		testConfig("p", group), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	fetches := cons.poll(ctx, cl)
	if n := len(fetches.Records()); n != 1 || fetches.Err0() != nil {
		t.Fatalf("first poll: %d records, error %v; want 1 and none", n, fetches.Err0())
	}
	// Two records reach the broker while "the batch is written"; the next
	// poll brings the first fetch back at once and looks once more.
	c.produce(t, recs[1])
	c.produce(t, recs[2])
	var got int
	for got < 2 && ctx.Err() == nil {
		fetches = cons.poll(ctx, cl)
		if err := fetches.Err0(); err != nil {
			t.Fatalf("poll returned the error %v", err)
		}
		got += len(fetches.Records())
	}
	if got != 2 {
		t.Errorf("%d records, want 2", got)
	}
}

// The soft memory limit grows with what a poll may hold, past the default's.
func TestMemoryLimitFollowsTheBatchSize(t *testing.T) {
	if got := MemoryLimit(5000); got != 40<<20 {
		t.Errorf("MemoryLimit(5000) = %d MiB, want 40", got>>20)
	}
	if got := MemoryLimit(50000); got != 50000*pollBatches*2<<10 {
		t.Errorf("MemoryLimit(50000) = %d MiB, want %d", got>>20, 50000*pollBatches*2>>10)
	}
}

// countingStore counts the batches written and the partitions each covers.
type countingStore struct {
	Store
	mu      sync.Mutex
	batches [][]int32
}

func (s *countingStore) WriteBatch(ctx context.Context, b store.Batch) (store.Result, error) {
	s.mu.Lock()
	var parts []int32
	for _, po := range b.Offsets {
		parts = append(parts, po.Partition)
	}
	s.batches = append(s.batches, parts)
	s.mu.Unlock()
	return s.Store.WriteBatch(ctx, b)
}

// A poll of less than a batch, over several partitions, is one transaction
// that stores every partition's offset; a bigger one is a batch per
// partition.
func TestASmallPollIsOneBatchForAllItsPartitions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		batchSize int
		want      func([][]int32) bool
	}{
		// (Usually one batch of all three; a poll may happen to come back
		// before every partition's records reached the client.)
		{"small", 100, func(b [][]int32) bool { return slices.ContainsFunc(b, func(p []int32) bool { return len(p) > 1 }) }},
		{"large", 5, func(b [][]int32) bool {
			for _, parts := range b {
				if len(parts) != 1 {
					return false
				}
			}
			return len(b) >= 3
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, 3)
			st := dbtest.NewStore(t)
			c.produceRoundRobin(t, 21, 30)
			counting := &countingStore{Store: st}
			cons, stop := memberWith(t, c, counting, "c1", io.Discard, func(cfg *Config) { cfg.BatchSize = tc.batchSize })
			eventually(t, "every order stored", func() bool { return count(t, st) == 30 })
			stop()
			offs, err := st.Offsets(context.Background(), group, cons.scope.Load().name)
			if err != nil || offs[0] != 10 || offs[1] != 10 || offs[2] != 10 {
				t.Errorf("stored offsets %v, %v; want 10 for each partition", offs, err)
			}
			counting.mu.Lock()
			defer counting.mu.Unlock()
			if !tc.want(counting.batches) {
				t.Errorf("batches by partitions %v", counting.batches)
			}
		})
	}
}

// A fetch minimum (CONSUMER_FETCH_MIN_BYTES) lets orders that come one at
// a time gather at the broker: a fetch waits for them up to the fetch wait,
// so a trickle is written in about one transaction per wait instead of one
// per order. With the default of one byte each order is its own.
func TestAFetchMinimumGathersATrickleIntoFewerBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	const n, gap, wait = 12, 100 * time.Millisecond, time.Second
	for _, tc := range []struct {
		name     string
		minBytes int32
		gathers  bool
	}{{"one byte", 1, false}, {"a mebibyte", 1 << 20, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t, 1)
			st := dbtest.NewStore(t)
			counting := &countingStore{Store: st}
			memberWith(t, c, counting, "c1", io.Discard, func(cfg *Config) { cfg.FetchMinBytes, cfg.FetchMaxWait = tc.minBytes, wait })
			_, recs := orders(31, n+1)
			c.produce(t, recs[0])
			eventually(t, "the first order stored", func() bool { return count(t, st) == 1 })
			batches := func() int { counting.mu.Lock(); defer counting.mu.Unlock(); return len(counting.batches) }
			before := batches()
			start := time.Now()
			for _, r := range recs[1:] {
				time.Sleep(gap)
				c.produce(t, r)
			}
			took := time.Since(start)
			eventually(t, "every order stored", func() bool { return count(t, st) == n+1 })
			// A fetch that waits for its minimum is answered once a wait; the
			// trickle's first and last fetch may each be cut short.
			got, most := batches()-before, int(took/wait)+2
			if tc.gathers && got > most {
				t.Errorf("%d orders in %v came in %d batches, want at most %d (one a fetch wait)", n, took, got, most)
			}
			if !tc.gathers && got <= most {
				t.Errorf("%d orders %v apart came in %d batches, want more than %d: each order in its own", n, gap, got, most)
			}
		})
	}
}

// stopWhilePublishing stops the consumer the first time Kafka has taken
// dead letters and the database has not yet marked them published.
type stopWhilePublishing struct {
	Store
	stop context.CancelFunc
	once sync.Once
}

func (s *stopWhilePublishing) PublishDeadLetters(ctx context.Context, group string, limit int,
	publish func(context.Context, []store.DeadLetter) []error) (int, error) {
	return s.Store.PublishDeadLetters(ctx, group, limit, func(pctx context.Context, dead []store.DeadLetter) []error {
		errs := publish(pctx, dead)
		s.once.Do(func() {
			s.stop()
			time.Sleep(300 * time.Millisecond) // the consumer leaves its group and stops its publisher
		})
		return errs
	})
}

// A consumer stopped in the middle of publishing dead letters finishes that
// publish: each letter reaches the dead-letter topic once.
func TestAStopDuringAPublishSendsEachDeadLetterOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	c := newCluster(t, 1)
	st := dbtest.NewStore(t)
	c.produce(t, &kgo.Record{Value: []byte("not an order")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wrapped := &stopWhilePublishing{Store: st, stop: cancel}
	cons, err := New(kafka.ClientOpts(kafka.Options{Brokers: []string{c.addr}}), wrapped,
		testConfig("c1", group),
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Run(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.ConsumeTopics(dlqTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer rcancel()
	var got int
	for rctx.Err() == nil {
		got += len(cl.PollFetches(rctx).Records())
	}
	if got != 1 {
		t.Errorf("%d dead letters on the topic, want 1", got)
	}
	var unpublished int
	if err := st.Pool().QueryRow(context.Background(), "SELECT count(*) FROM dead_letters WHERE published_at IS NULL").Scan(&unpublished); err != nil || unpublished != 0 {
		t.Errorf("%d dead letters left unpublished (%v), want 0", unpublished, err)
	}
}

// New refuses a Config with a setting left out, and names it: the defaults
// are package config's, and a consumer that filled in a zero with one of its
// own would run on a value nobody declared. A zero that means something
// (no retries, no stats lines) is taken.
func TestNewRefusesASettingLeftOutAndNamesIt(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, tt := range []struct {
		field string
		leave func(*Config)
	}{
		{"Group", func(c *Config) { c.Group = "" }},
		{"Topic", func(c *Config) { c.Topic = "" }},
		{"DLQTopic", func(c *Config) { c.DLQTopic = "" }},
		{"BatchSize", func(c *Config) { c.BatchSize = 0 }},
		{"Writers", func(c *Config) { c.Writers = 0 }},
		{"DBRetries", func(c *Config) { c.DBRetries = -1 }},
		{"SessionTimeout", func(c *Config) { c.SessionTimeout = 0 }},
		{"GroupProtocol", func(c *Config) { c.GroupProtocol = "" }},
		{"GroupProtocol", func(c *Config) { c.GroupProtocol = "eager" }},
		{"FetchMaxWait", func(c *Config) { c.FetchMaxWait = 0 }},
		{"FetchMinBytes", func(c *Config) { c.FetchMinBytes = 0 }},
		{"ShutdownTimeout", func(c *Config) { c.ShutdownTimeout = 0 }},
	} {
		t.Run(tt.field, func(t *testing.T) {
			cfg := testConfig("c1", group)
			tt.leave(&cfg)
			cons, err := New(nil, nil, cfg, log)
			if err == nil {
				cons.pub.Close()
				t.Fatalf("New took a Config without %s, and runs on %+v", tt.field, cons.cfg)
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.field+" must be") {
				t.Errorf("New = %v, want ErrConfig naming %s", err, tt.field)
			}
		})
	}
	cfg := testConfig("c1", group)
	cfg.DBRetries, cfg.StatsInterval = 0, 0
	cons, err := New(nil, nil, cfg, log)
	if err != nil {
		t.Fatalf("New of a whole Config: %v", err)
	}
	cons.pub.Close()
}
