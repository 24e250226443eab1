package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/demo"
	"foodpipe/internal/dlq"
	"foodpipe/internal/harness"
	"foodpipe/internal/kafka"
	"foodpipe/internal/report"
	"foodpipe/internal/store/dbtest"
)

// syncBuffer is a buffer safe for the goroutines of a running command.
type syncBuffer = harness.LogBuffer

type run struct {
	stdout, stderr *syncBuffer
	env            *Env
}

// newRun is an Env whose variables are only the given ones: the tests never
// depend on the machine's environment or a .env file.
func newRun(t *testing.T, vars ...string) *run {
	t.Helper()
	m := map[string]string{"STATS_INTERVAL": "1s"}
	for i := 0; i+1 < len(vars); i += 2 {
		m[vars[i]] = vars[i+1]
	}
	out, errb := &syncBuffer{}, &syncBuffer{}
	level := new(slog.LevelVar)
	return &run{stdout: out, stderr: errb, env: &Env{
		Stdout: out, Stderr: errb, Level: level,
		Log:    slog.New(slog.NewJSONHandler(errb, &slog.HandlerOptions{Level: level})),
		Lookup: func(k string) (string, bool) { v, ok := m[k]; return v, ok },
	}}
}

func (r *run) do(ctx context.Context, args ...string) error { return Run(ctx, r.env, args) }

func broker(t *testing.T) string {
	t.Helper()
	b, err := kafka.StartBroker(kafka.BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Addr()
}

func migrate(t *testing.T, url string) {
	t.Helper()
	r := newRun(t, "DATABASE_URL", url)
	if err := r.do(context.Background(), "migrate", "up"); err != nil {
		t.Fatal(err)
	}
}

func countRows(t *testing.T, url string) (total int, byPartition map[int32]int) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), "select kafka_partition, count(*) from orders group by 1")
	if err != nil {
		t.Fatal(err)
	}
	byPartition = map[int32]int{}
	for rows.Next() {
		var p int32
		var n int
		if err := rows.Scan(&p, &n); err != nil {
			t.Fatal(err)
		}
		byPartition[p] = n
		total += n
	}
	return total, byPartition
}

func TestDemoStoresEveryProducedOrderExactlyOnceAcrossTwoConsumers(t *testing.T) {
	url := dbtest.New(t)
	r := newRun(t, "DATABASE_URL", url)
	ctx := context.Background()
	if err := r.do(ctx, "demo", "--orders", "100", "--rate", "200", "--consumers", "2", "--json"); err != nil {
		t.Fatalf("demo: %v\nstderr:\n%s", err, r.stderr)
	}
	var s demo.Summary
	if err := json.Unmarshal([]byte(r.stdout.String()), &s); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, r.stdout)
	}
	if s.Produced != 100 || s.Stored != 100 || s.Missing != 0 || s.Duplicates != 0 || s.Invalid != 0 {
		t.Errorf("summary %+v", s)
	}
	if len(s.Consumers) != 2 {
		t.Fatalf("consumers %v", s.Consumers)
	}
	var byConsumer int64
	for id, n := range s.Consumers {
		if n == 0 {
			t.Errorf("%s stored nothing: %v", id, s.Consumers)
		}
		byConsumer += n
	}
	if byConsumer != 100 {
		t.Errorf("consumers stored %d in all, want 100", byConsumer)
	}
	total, byPartition := countRows(t, url)
	if total != 100 || len(byPartition) != 3 {
		t.Errorf("table holds %d rows over %v", total, byPartition)
	}
	for p, n := range byPartition {
		if s.Partitions[fmt.Sprint(p)] != int64(n) {
			t.Errorf("partition %d: summary %d, table %d", p, s.Partitions[fmt.Sprint(p)], n)
		}
	}
	if s.LatencyMS.P50 <= 0 || s.LatencyMS.P99 < s.LatencyMS.P50 {
		t.Errorf("latency %+v", s.LatencyMS)
	}
	// With --json the live view goes to stderr, leaving stdout to the summary.
	if !strings.Contains(r.stderr.String(), "rebalance: consumer-2 owned [], now owns [") || !strings.Contains(r.stderr.String(), "progress produced 100/100") {
		t.Errorf("progress output missing:\n%s", r.stderr)
	}
}

func TestDemoPrintsAReadableSummary(t *testing.T) {
	url := dbtest.New(t)
	r := newRun(t, "DATABASE_URL", url)
	if err := r.do(context.Background(), "demo", "--orders", "20", "--rate", "0", "--consumers", "1"); err != nil {
		t.Fatalf("demo: %v\n%s", err, r.stderr)
	}
	for _, want := range []string{"produced    20", "stored      20", "exactly once", "per partition"} {
		if !strings.Contains(r.stdout.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
}

// With --analytics the demo runs a member of a second group on the same
// topic, waits for it to count this run's orders (not those of a run
// before, in the same database), and checks its sums against the table.
func TestDemoWithAnalyticsCountsEveryOrderOnceInTheSecondGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	url := dbtest.New(t)
	for run := 1; run <= 2; run++ {
		r := newRun(t, "DATABASE_URL", url)
		if err := r.do(context.Background(), "demo", "--orders", "50", "--rate", "0", "--consumers", "1", "--analytics", "--json"); err != nil {
			t.Fatalf("run %d: demo: %v\n%s", run, err, r.stderr)
		}
		var s demo.Summary
		if err := json.Unmarshal([]byte(r.stdout.String()), &s); err != nil {
			t.Fatalf("summary is not JSON: %v\n%s", err, r.stdout)
		}
		if s.Analytics == nil || s.Analytics.Group != "order-analytics" || s.Analytics.Counted != 50 || len(s.Analytics.Differences) != 0 {
			t.Errorf("run %d: analytics %+v, want 50 counted and no differences", run, s.Analytics)
		} else if s.Analytics.Checked != int64(50*run) {
			t.Errorf("run %d: %d orders checked, want the %d the group has counted over the runs", run, s.Analytics.Checked, 50*run)
		}
		if !strings.Contains(r.stderr.String(), "group order-analytics: analytics-1 now owns [0 1 2] (the orders group is not affected)") {
			t.Errorf("run %d: the live view does not show the analytics group's own rebalance:\n%s", run, tail(r.stderr.String(), 2000))
		}
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var counted int64
	if err := conn.QueryRow(context.Background(), "SELECT sum(orders)::bigint FROM analytics_minute WHERE group_id = 'order-analytics'").Scan(&counted); err != nil {
		t.Fatal(err)
	}
	if counted != 100 {
		t.Errorf("the aggregates count %d orders over two runs, want 100", counted)
	}
}

// A database shared with an earlier run: `demo` stores orders the analytics
// group never sees, then `demo --analytics` runs the group on new orders.
// The earlier orders are no difference; verify checks the orders the group
// counted and tells the others as a number.
func TestAnalyticsVerifyChecksTheOrdersTheGroupCounted(t *testing.T) {
	url := dbtest.New(t)
	if err := newRun(t, "DATABASE_URL", url).do(context.Background(), "demo", "--orders", "30", "--rate", "0", "--consumers", "1"); err != nil {
		t.Fatalf("demo: %v", err)
	}
	r := newRun(t, "DATABASE_URL", url)
	if err := r.do(context.Background(), "demo", "--orders", "20", "--rate", "0", "--consumers", "1", "--analytics"); err != nil {
		t.Fatalf("demo --analytics after a demo without: %v\n%s", err, r.stdout)
	}
	if want := "analytics   20 orders counted by group order-analytics; its aggregates equal the orders table's, to the cent"; !strings.Contains(r.stdout.String(), want) {
		t.Errorf("the demo's summary lacks %q:\n%s", want, r.stdout)
	}
	v := newRun(t, "DATABASE_URL", url)
	if err := v.do(context.Background(), "analytics", "verify"); err != nil {
		t.Fatalf("verify: %v\n%s", err, v.stdout)
	}
	want := "the aggregates of group order-analytics equal the orders table's for the 20 orders it counted, to the cent\n" +
		"the table holds 30 orders group order-analytics has not counted: its lag (foodpipe status --group order-analytics), or orders stored before it began\n"
	if v.stdout.String() != want {
		t.Errorf("verify printed:\n%s\nwant:\n%s", v.stdout, want)
	}
}

// Without DATABASE_URL the demo runs in a database of its own on the local
// server, and empties it first: each run's summary and analytics check are
// that run's alone, however many ran before.
func TestDemoStartsEachRunFromItsOwnDatabaseEmptied(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	url := dbtest.New(t) // the local server's; the demo finds it there by name
	was := demoDatabase
	demoDatabase = url[strings.LastIndex(url, "/")+1 : strings.Index(url, "?")]
	t.Cleanup(func() { demoDatabase = was })
	for run, args := range [][]string{{}, {}, {"--analytics"}} {
		r := newRun(t)
		err := r.do(context.Background(), append([]string{"demo", "--orders", "20", "--rate", "0", "--consumers", "1", "--json"}, args...)...)
		if err != nil {
			t.Fatalf("run %d: demo %v: %v\n%s", run+1, args, err, tail(r.stderr.String(), 2000))
		}
		if !strings.Contains(r.stderr.String(), "/"+demoDatabase+"?sslmode=disable (local server)") {
			t.Fatalf("run %d did not use database %s on the local server:\n%s", run+1, demoDatabase, tail(r.stderr.String(), 2000))
		}
		if total, _ := countRows(t, url); total != 20 {
			t.Errorf("run %d: the table holds %d orders, want this run's 20", run+1, total)
		}
		var s demo.Summary
		if err := json.Unmarshal([]byte(r.stdout.String()), &s); err != nil {
			t.Fatalf("summary is not JSON: %v\n%s", err, r.stdout)
		}
		if a := s.Analytics; len(args) > 0 && (a == nil || a.Counted != 20 || a.Checked != 20 || len(a.Differences) > 0) {
			t.Errorf("run %d: analytics %+v, want this run's 20 orders counted and checked", run+1, a)
		}
	}
}

// The separate-terminals workflow of the README: a broker, two consumers as
// group members, a producer; the group shares the partitions and stores each
// order once; a stop signal makes each consumer exit cleanly.
func TestProduceAndTwoConsumersShareThePartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	addr := broker(t)
	url := dbtest.New(t)
	vars := []string{"KAFKA_BROKERS", addr, "DATABASE_URL", url}
	ctx := context.Background()
	migrate(t, url)

	cctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	results := make(chan error, 2)
	runs := []*run{newRun(t, vars...), newRun(t, vars...)}
	for i, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- r.do(cctx, "consume", "--id", fmt.Sprintf("c%d", i+1))
		}()
	}
	// Both members share the partitions before the orders flow.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := newRun(t, vars...)
		var s report.Status
		if r.do(ctx, "status", "--json") == nil && json.Unmarshal([]byte(r.stdout.String()), &s) == nil &&
			len(s.Members) == 2 && len(s.Members[0].Partitions) > 0 && len(s.Members[1].Partitions) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two consumers never shared the partitions: %+v", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p := newRun(t, vars...)
	if err := p.do(ctx, "produce", "--count", "300", "--rate", "0", "--seed", "7"); err != nil {
		t.Fatalf("produce: %v\n%s", err, p.stderr)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		total, _ := countRows(t, url)
		if total == 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored %d of 300", total)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopped := time.Now()
	stop()
	wg.Wait()
	if d := time.Since(stopped); d > 10*time.Second {
		t.Errorf("consumers took %v to stop", d)
	}
	close(results)
	for err := range results {
		if err != nil {
			t.Errorf("consume returned %v", err)
		}
	}

	// The same messages again, byte for byte (as after a producer retry or a
	// replay): all counted as duplicates, nothing new stored.
	resend(t, addr, "food-orders", 300)
	again := newRun(t, vars...)
	actx, astop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- again.do(actx, "consume", "--id", "c3") }()
	deadline = time.Now().Add(30 * time.Second)
	// Done when the offsets stored with the orders cover the re-sent
	// messages too.
	for dbCount(t, url, "SELECT coalesce(sum(next_offset), 0)::int FROM consumer_offsets") < 600 {
		if time.Now().After(deadline) {
			t.Fatalf("re-delivered orders were not all counted as duplicates:\n%s", tail(again.stderr.String(), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	astop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if total, _ := countRows(t, url); total != 300 {
		t.Errorf("table holds %d rows after re-delivery, want 300", total)
	}
}

func TestInvalidMessagesGoToTheDeadLetterTopicAndDoNotBlockTheirPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	addr := broker(t)
	url := dbtest.New(t)
	vars := []string{"KAFKA_BROKERS", addr, "DATABASE_URL", url, "KAFKA_PARTITIONS", "1"}
	ctx := context.Background()
	migrate(t, url)
	p := newRun(t, vars...)
	if err := p.do(ctx, "produce", "--count", "5", "--rate", "0"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	bad := []*kgo.Record{
		{Topic: "food-orders", Value: []byte("not json")},
		{Topic: "food-orders", Value: []byte(`{"order_id":"X"}`), Key: []byte("k")},
		{Topic: "food-orders", Value: nil},
	}
	if err := cl.ProduceSync(ctx, bad...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := p.do(ctx, "produce", "--count", "5", "--rate", "0"); err != nil {
		t.Fatal(err)
	}

	c := newRun(t, vars...)
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.do(cctx, "consume") }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if total, _ := countRows(t, url); total == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("valid orders after the invalid ones were not stored:\n%s", tail(c.stderr.String(), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	dlqClient, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("food-orders.dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer dlqClient.Close()
	var got []*kgo.Record
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for len(got) < 3 && fctx.Err() == nil {
		got = append(got, dlqClient.PollFetches(fctx).Records()...)
	}
	if len(got) != 3 {
		t.Fatalf("dead letters: %d, want 3", len(got))
	}
	wantReasons := []string{"not_json", "missing_field", "empty_value"}
	for i, r := range got {
		h := headers(r)
		if h[dlq.HeaderReason] != wantReasons[i] {
			t.Errorf("dead letter %d reason %q, want %q", i, h[dlq.HeaderReason], wantReasons[i])
		}
		if !bytes.Equal(r.Value, bad[i].Value) {
			t.Errorf("dead letter %d value %q, want the original %q", i, r.Value, bad[i].Value)
		}
		if h[dlq.HeaderSourceTopic] != "food-orders" || h[dlq.HeaderSourcePartition] != "0" || h[dlq.HeaderSourceOffset] != fmt.Sprint(5+i) {
			t.Errorf("dead letter %d source headers %v", i, h)
		}
		if h[dlq.HeaderError] == "" {
			t.Errorf("dead letter %d has no error text", i)
		}
	}
}

// resend reads the first n records of a topic and produces them again.
func resend(t *testing.T, addr, topic string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for len(recs) < n && ctx.Err() == nil {
		for _, r := range cl.PollFetches(ctx).Records() {
			recs = append(recs, &kgo.Record{Topic: topic, Key: r.Key, Value: r.Value, Headers: r.Headers})
		}
	}
	if len(recs) < n {
		t.Fatalf("read %d of %d records", len(recs), n)
	}
	if err := cl.ProduceSync(ctx, recs[:n]...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func headers(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		m[h.Key] = string(h.Value)
	}
	return m
}

func TestProduceHoldsItsRate(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	addr := broker(t)
	r := newRun(t, "KAFKA_BROKERS", addr)
	if err := r.do(context.Background(), "produce", "--rate", "20", "--duration", "5s"); err != nil {
		t.Fatal(err)
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(addr))
	defer cl.Close()
	info, err := kafka.DescribeTopic(context.Background(), kadm.NewClient(cl), "food-orders")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, p := range info.Partitions {
		n += p.HighWatermark
	}
	if n < 98 || n > 102 {
		t.Errorf("--rate 20 for 5s put %d orders on the topic, want 100 ± 2", n)
	}
}

func TestProduceFailsClearlyWhenNoBrokerAnswers(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	r := newRun(t, "KAFKA_BROKERS", addr, "PRODUCER_RETRIES", "1")
	err := r.do(context.Background(), "produce", "--count", "1")
	if !errors.Is(err, kafka.ErrUnreachable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("err = %v, want ErrUnreachable naming %s", err, addr)
	}
}

func TestTopicCreateAndDescribe(t *testing.T) {
	addr := broker(t)
	r := newRun(t, "KAFKA_BROKERS", addr)
	ctx := context.Background()
	if err := r.do(ctx, "topic", "create"); err != nil {
		t.Fatal(err)
	}
	if out := r.stdout.String(); !strings.Contains(out, "food-orders ") || !strings.Contains(out, "created") {
		t.Errorf("create output:\n%s", out)
	}
	if err := r.do(ctx, "topic", "describe"); err != nil {
		t.Fatal(err)
	}
	out := r.stdout.String()
	for _, want := range []string{"topic food-orders: 3 partitions, replication factor 1", "retention.ms=604800000", "HIGH WATERMARK", "topic food-orders.dlq: 1 partition,"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
	other := newRun(t, "KAFKA_BROKERS", addr, "KAFKA_PARTITIONS", "6")
	err := other.do(ctx, "topic", "create")
	if !errors.Is(err, kafka.ErrTopicDiffers) || !strings.Contains(other.stdout.String(), "partitions: want 6, have 3") {
		t.Errorf("differing topic: err %v, output:\n%s", err, other.stdout)
	}
}

// The security settings reach every client through kafkaOptions.
func TestTopicCreateAuthenticatesWithSCRAM(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "orders", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	ctx := context.Background()
	r := newRun(t, "KAFKA_BROKERS", addr, "KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", "KAFKA_SASL_USERNAME", "orders", "KAFKA_SASL_PASSWORD", "pw")
	if err := r.do(ctx, "topic", "create"); err != nil {
		t.Fatalf("with the right credentials: %v", err)
	}
	wrong := newRun(t, "KAFKA_BROKERS", addr, "KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", "KAFKA_SASL_USERNAME", "orders", "KAFKA_SASL_PASSWORD", "nope")
	if err := wrong.do(ctx, "topic", "describe"); !errors.Is(err, kafka.ErrUnreachable) || !strings.Contains(err.Error(), "SASL") {
		t.Fatalf("with a wrong password: %v", err)
	}
}

func TestMigrateUpStatusDown(t *testing.T) {
	url := dbtest.New(t)
	r := newRun(t, "DATABASE_URL", url)
	ctx := context.Background()
	if err := r.do(ctx, "migrate", "up"); err != nil {
		t.Fatal(err)
	}
	if out := r.stdout.String(); !strings.Contains(out, "create_orders") || strings.Contains(out, "pending") {
		t.Errorf("status after up:\n%s", out)
	}
	r.stdout.Reset()
	if err := r.do(ctx, "migrate", "down"); err != nil {
		t.Fatal(err)
	}
	if out := r.stdout.String(); !strings.Contains(out, "pending") {
		t.Errorf("status after down:\n%s", out)
	}
}

func TestBadInputStopsWithAMessageSayingWhichAndWhy(t *testing.T) {
	tests := []struct {
		name  string
		vars  []string
		args  []string
		usage bool
		want  string
	}{
		{"no command", nil, nil, true, "no command"},
		{"an unknown command", nil, []string{"fly"}, true, `unknown command "fly"`},
		{"a bad rate flag", nil, []string{"produce", "--rate", "fast"}, true, "PRODUCER_RATE"},
		{"a bad variable", []string{"KAFKA_PARTITIONS", "-3"}, []string{"topic", "create"}, false, "KAFKA_PARTITIONS"},
		{"an unknown flag", nil, []string{"consume", "--nope"}, true, "nope"},
		{"a stray argument", nil, []string{"produce", "extra"}, true, `unexpected argument "extra"`},
		{"topic without a verb", nil, []string{"topic"}, true, "create|describe"},
		{"migrate without a verb", nil, []string{"migrate", "sideways"}, true, "up|down|status"},
		{"a negative count", nil, []string{"produce", "--count", "-1"}, true, "--count"},
		{"the dead-letter topic as the orders topic", []string{"KAFKA_DLQ_TOPIC", "food-orders"}, []string{"produce"}, false, "must differ"},
		{"zero consumers in the demo", nil, []string{"demo", "--consumers", "0"}, true, "--consumers"},
		{"analytics with an unknown verb", nil, []string{"analytics", "sum"}, true, "run|report|verify"},
		{"no bench rounds", nil, []string{"bench", "--rounds", "0"}, true, "--rounds"},
		{"a storm of no kills", nil, []string{"bench", "--protocols", "--kills", "0"}, true, "--kills"},
		{"no orders for the protocols", nil, []string{"bench", "--protocols", "--protocol-orders", "0"}, true, "--protocol-orders"},
		{"a protocols rate of nothing", nil, []string{"bench", "--protocols", "--protocol-rate", "0"}, true, "--protocol-rate"},
		{"a bench session timeout out of range", nil, []string{"bench", "--session-timeout", "500ms"}, true, "CONSUMER_SESSION_TIMEOUT"},
		{"an analytics report of no minutes", nil, []string{"analytics", "report", "--minutes", "0"}, true, "--minutes"},
		{"an empty analytics group", []string{"KAFKA_ANALYTICS_GROUP", ""}, []string{"analytics", "report"}, false, "KAFKA_ANALYTICS_GROUP"},
		{"a SASL mechanism without a user", []string{"KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", "KAFKA_SASL_PASSWORD", "pw"}, []string{"consume"}, false, "KAFKA_SASL_USERNAME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRun(t, tt.vars...)
			err := r.do(context.Background(), tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if errors.Is(err, ErrUsage) != tt.usage {
				t.Errorf("usage error = %v, want %v", errors.Is(err, ErrUsage), tt.usage)
			}
		})
	}
}

func TestConfigPrintsEveryVariableWithThePasswordMasked(t *testing.T) {
	r := newRun(t, "DATABASE_URL", "postgres://u:secret@db:5432/x",
		"KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", "KAFKA_SASL_USERNAME", "orders", "KAFKA_SASL_PASSWORD", "scram-secret")
	if err := r.do(context.Background(), "config"); err != nil {
		t.Fatal(err)
	}
	out := r.stdout.String()
	if strings.Contains(out, "secret") || !strings.Contains(out, "KAFKA_SASL_PASSWORD=xxxxx") || !strings.Contains(out, "DATABASE_URL=postgres://u:xxxxx@db:5432/x") || !strings.Contains(out, "KAFKA_TOPIC=food-orders") {
		t.Errorf("config output:\n%s", out)
	}
}

func TestHelpListsTheCommands(t *testing.T) {
	r := newRun(t)
	if err := r.do(context.Background(), "help"); err != nil {
		t.Fatal(err)
	}
	for _, c := range commands() {
		if !strings.Contains(r.stderr.String(), c.name) {
			t.Errorf("help lacks %s", c.name)
		}
	}
}

// -h answers alike for every command: its flags (a command with
// subcommands, those of each) on stderr, and no error, so exit code 0.
func TestEveryCommandPrintsItsFlagsForDashH(t *testing.T) {
	// A flag each command has, and for a command with subcommands a flag
	// of each that only it has.
	flagsOf := map[string][]string{
		"topic":     {"Usage of foodpipe topic create:", "-replication-factor", "Usage of foodpipe topic describe:", "Usage of foodpipe topic keys:"},
		"migrate":   {"Usage of foodpipe migrate up:", "Usage of foodpipe migrate down:", "Usage of foodpipe migrate status:", "-database-url"},
		"dlq":       {"Usage of foodpipe dlq list:", "-limit", "Usage of foodpipe dlq replay:", "-dry-run"},
		"analytics": {"-id"}, "notify": {"-id", "NOTIFY_BATCH_SIZE"}, "demo": {"-orders", "-notify"}, "status": {"-watch"}, "produce": {"-rate"}, "consume": {"-batch-size"},
	}
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			for _, h := range []string{"-h", "--help"} {
				r := newRun(t)
				err := r.do(context.Background(), c.name, h)
				if err != nil && !errors.Is(err, flag.ErrHelp) {
					t.Errorf("%s %s: %v, want the help and exit code 0", c.name, h, err)
				}
				out := r.stderr.String()
				if !strings.Contains(out, "Usage of foodpipe "+c.name) {
					t.Errorf("%s %s printed no usage:\n%s", c.name, h, out)
				}
				for _, want := range flagsOf[c.name] {
					if !strings.Contains(out, want) {
						t.Errorf("%s %s lacks %q:\n%s", c.name, h, want, out)
					}
				}
			}
		})
	}
	// A missing or unknown subcommand is still a usage error.
	for _, args := range [][]string{{"topic"}, {"migrate", "sideways"}, {"dlq", "burn"}} {
		if err := newRun(t).do(context.Background(), args...); !errors.Is(err, ErrUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

func TestBrokerCommandServesUntilStopped(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	r := newRun(t)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.do(ctx, "broker", "--listen", addr, "--data-dir", t.TempDir()) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.stderr.String(), "listening on "+addr) {
		if time.Now().After(deadline) {
			t.Fatalf("broker did not start:\n%s", r.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	d := newRun(t, "KAFKA_BROKERS", addr)
	if err := d.do(context.Background(), "topic", "describe"); err != nil {
		t.Fatalf("describe against the broker: %v", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
