package cli

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/dlq"
	"foodpipe/internal/store/dbtest"
)

// deadLetterSetup runs the real consumer over 3 valid orders and 3 invalid
// messages (two not JSON, one missing fields), so the dead-letter topic holds
// what the consumer really writes there. It returns the environment.
func deadLetterSetup(t *testing.T) []string {
	t.Helper()
	addr := broker(t)
	url := dbtest.New(t)
	vars := []string{"KAFKA_BROKERS", addr, "DATABASE_URL", url, "KAFKA_PARTITIONS", "1"}
	ctx := context.Background()
	migrate(t, url)
	if err := newRun(t, vars...).do(ctx, "produce", "--count", "3", "--rate", "0"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("food-orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx,
		&kgo.Record{Key: []byte("k1"), Value: []byte("garbage\x00one"), Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t1")}}},
		&kgo.Record{Key: []byte("k2"), Value: []byte("garbage two")},
		&kgo.Record{Key: []byte("k3"), Value: []byte(`{"order_id":"ORD-X"}`)},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	consumeUntil(t, vars, func() bool { return dbCount(t, url, "SELECT count(*)::int FROM dead_letters") == 3 })
	return vars
}

// consumeUntil runs `foodpipe consume` until done holds.
func consumeUntil(t *testing.T, vars []string, done func() bool) {
	t.Helper()
	c := newRun(t, vars...)
	ctx, stop := context.WithCancel(context.Background())
	finished := make(chan error, 1)
	go func() { finished <- c.do(ctx, "consume") }()
	deadline := time.Now().Add(30 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("consumer did not get there:\n%s", tail(c.stderr.String(), 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-finished; err != nil {
		t.Fatal(err)
	}
}

// dbCount runs a count query on the database at url.
func dbCount(t *testing.T, url, sql string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestDlqListShowsEveryDeadLetterWithItsReasonAndSource(t *testing.T) {
	vars := deadLetterSetup(t)
	ctx := context.Background()
	tests := []struct {
		name  string
		args  []string
		want  []string
		lines int
	}{
		{"all dead letters with a count per reason", nil,
			[]string{"not_json", "missing_field", "food-orders/0@3", `"garbage\x00one"`, "3 dead letters  missing_field=1  not_json=2", "DLQ OFFSET  REASON", "customer_id is missing"}, 5},
		{"filtered by reason", []string{"--reason", "not_json"}, []string{"2 dead letters  not_json=2"}, 4},
		{"limited", []string{"--limit", "1"}, []string{"1 dead letter  not_json=1"}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRun(t, vars...)
			if err := r.do(ctx, append([]string{"dlq", "list"}, tt.args...)...); err != nil {
				t.Fatal(err)
			}
			out := r.stdout.String()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if n := strings.Count(out, "\n"); n != tt.lines {
				t.Errorf("%d lines, want %d:\n%s", n, tt.lines, out)
			}
		})
	}
	t.Run("as JSON lines with the error text", func(t *testing.T) {
		r := newRun(t, vars...)
		if err := r.do(ctx, "dlq", "list", "--json"); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout.String()), "\n")
		if len(lines) != 3 {
			t.Fatalf("%d lines", len(lines))
		}
		var d dlq.Listed
		if err := json.Unmarshal([]byte(lines[2]), &d); err != nil {
			t.Fatalf("%v: %s", err, lines[2])
		}
		if d.Reason != "missing_field" || d.Error == "" || d.Value != `{"order_id":"ORD-X"}` || d.Key != "k3" {
			t.Errorf("dead letter %+v", d)
		}
		// Positions are numbers, those of the source as well as the letter's own.
		var raw map[string]any
		if err := json.Unmarshal([]byte(lines[2]), &raw); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"partition": 0.0, "offset": 2.0, "source_topic": "food-orders", "source_partition": 0.0, "source_offset": 5.0}
		for k, v := range want {
			if raw[k] != v {
				t.Errorf("%s is %#v, want %#v: %s", k, raw[k], v, lines[2])
			}
		}
	})
}

func TestDlqReplayPublishesChosenDeadLettersOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	vars := deadLetterSetup(t)
	ctx := context.Background()
	run := func(args ...string) string {
		t.Helper()
		r := newRun(t, vars...)
		if err := r.do(ctx, append([]string{"dlq", "replay"}, args...)...); err != nil {
			t.Fatalf("replay %v: %v", args, err)
		}
		return r.stdout.String()
	}
	if out := run("--reason", "not_json", "--dry-run"); !strings.Contains(out, "would replay") || !strings.Contains(out, "replayed 0") {
		t.Errorf("dry run:\n%s", out)
	}
	if n := messages(t, vars[1], "food-orders"); n != 6 {
		t.Fatalf("a dry run published: %d messages on the topic", n)
	}
	if out := run("--reason", "not_json"); !strings.Contains(out, "replayed 2, skipped 0") {
		t.Errorf("first replay:\n%s", out)
	}
	if out := run("--reason", "not_json"); !strings.Contains(out, "replayed 0, skipped 2") {
		t.Errorf("second replay:\n%s", out)
	}
	if out := run("--offset", "2"); !strings.Contains(out, "replayed 1, skipped 0") {
		t.Errorf("replay by offset:\n%s", out)
	}
	recs := readAll(t, vars[1], "food-orders", 9)
	replayed := recs[6:]
	wantValues := []string{"garbage\x00one", "garbage two", `{"order_id":"ORD-X"}`}
	for i, r := range replayed {
		h := headers(r)
		if string(r.Value) != wantValues[i] || h[dlq.HeaderReplayedFrom] == "" || h["dlq.reason"] != "" {
			t.Errorf("replayed %d: value %q headers %v", i, r.Value, h)
		}
	}
	if h := headers(replayed[0]); h["trace"] != "t1" || string(replayed[0].Key) != "k1" {
		t.Errorf("the original key and headers were not kept: %q %v", replayed[0].Key, h)
	}
	// Replayed messages that are still invalid come back to the dead-letter
	// topic with the same reasons.
	consumeUntil(t, vars, func() bool { return dbCount(t, vars[3], "SELECT count(*)::int FROM dead_letters") == 6 })
	r := newRun(t, vars...)
	if err := r.do(ctx, "dlq", "list"); err != nil {
		t.Fatal(err)
	}
	out := r.stdout.String()
	if !strings.Contains(out, "6 dead letters  missing_field=2  not_json=4") {
		t.Errorf("after consuming the replays:\n%s", out)
	}
	// The list shows the chain: each original was replayed, and each new
	// dead letter failed again after the replay of its original.
	if n := strings.Count(out, "[replayed at "); n != 3 {
		t.Errorf("%d dead letters shown as replayed, want the 3 originals:\n%s", n, out)
	}
	for _, pos := range []string{"food-orders.dlq/0/0", "food-orders.dlq/0/1", "food-orders.dlq/0/2"} {
		if !strings.Contains(out, "failed again after the replay of "+pos) {
			t.Errorf("no dead letter names %s as its original:\n%s", pos, out)
		}
	}
	// Replaying everything again, twice, then a dry run: the replays are
	// not replayed again, so nothing grows.
	for _, args := range [][]string{{"--all"}, {"--all"}, {"--all", "--dry-run"}} {
		if out := run(args...); !strings.Contains(out, "replayed 0, skipped 6") {
			t.Errorf("replay %v:\n%s", args, out)
		}
	}
	if n := messages(t, vars[1], "food-orders"); n != 9 {
		t.Errorf("%d messages on the orders topic, want still 9", n)
	}
	if n := messages(t, vars[1], "food-orders.dlq"); n != 6 {
		t.Errorf("%d dead letters, want still 6", n)
	}
	// Named by offset, a dead letter from a replay is replayed again.
	if out := run("--offset", "3"); !strings.Contains(out, "replayed 1, skipped 0") {
		t.Errorf("replay of a replay by offset:\n%s", out)
	}
}

func TestDlqReplayNeedsToBeToldWhich(t *testing.T) {
	for _, args := range [][]string{{"dlq", "replay"}, {"dlq"}, {"dlq", "purge"}, {"dlq", "replay", "--offset", "x"}, {"dlq", "list", "--limit", "-1"}} {
		err := newRun(t).do(context.Background(), args...)
		if !errors.Is(err, ErrUsage) {
			t.Errorf("%v: err %v, want a usage error", args, err)
		}
	}
}

func TestDlqListOfAnEmptyTopicSaysSo(t *testing.T) {
	addr := broker(t)
	if err := newRun(t, "KAFKA_BROKERS", addr).do(context.Background(), "topic", "create"); err != nil {
		t.Fatal(err)
	}
	r := newRun(t, "KAFKA_BROKERS", addr)
	if err := r.do(context.Background(), "dlq", "list"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stdout.String(), "0 dead letters") {
		t.Errorf("output:\n%s", r.stdout)
	}
	r = newRun(t, "KAFKA_BROKERS", addr)
	if err := r.do(context.Background(), "dlq", "replay", "--all"); err != nil || !strings.Contains(r.stdout.String(), "no dead letters match") {
		t.Errorf("replay of nothing: %v\n%s", err, r.stdout)
	}
}

func messages(t *testing.T, addr, topic string) int {
	t.Helper()
	return len(readAll(t, addr, topic, -1))
}

// readAll reads want records from a topic, or with want -1 everything there is now.
func readAll(t *testing.T, addr, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	limit := 10 * time.Second
	if want < 0 {
		limit = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var recs []*kgo.Record
	for (want < 0 || len(recs) < want) && ctx.Err() == nil {
		recs = append(recs, cl.PollFetches(ctx).Records()...)
	}
	return recs
}
