package semantics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/kafka"
	"foodpipe/internal/order"
	"foodpipe/internal/semantics"
	"foodpipe/internal/store/dbtest"
)

func TestParseKnowsTheTwoTeachingSemanticsOnly(t *testing.T) {
	for _, s := range semantics.Teaching {
		if got, err := semantics.Parse(string(s)); err != nil || got != s {
			t.Errorf("Parse(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"exactly-once", "at-most-twice", ""} {
		if _, err := semantics.Parse(s); !errors.Is(err, semantics.ErrSemantics) {
			t.Errorf("Parse(%q): %v, want ErrSemantics", s, err)
		}
	}
}

func TestEachSemanticsHasItsOwnGroupTableAndCrashPoint(t *testing.T) {
	groups, tables, points := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, s := range semantics.All {
		groups[semantics.Group(s)], tables[semantics.Table(s)], points[semantics.CrashPoint(s)] = true, true, true
	}
	if len(groups) != 3 || len(tables) != 3 || len(points) != 3 {
		t.Errorf("groups %v, tables %v, crash points %v: want three of each", groups, tables, points)
	}
	if semantics.Table(semantics.ExactlyOnce) != "orders" || semantics.CrashPoint(semantics.ExactlyOnce) != "consumer.before-kafka-commit" {
		t.Error("the exactly-once semantics is the pipeline's own group: the orders table, the consumer's crash point")
	}
}

func TestANewMemberRefusesAMissingSetting(t *testing.T) {
	_, err := semantics.New(nil, nil, semantics.Config{Semantics: semantics.AtMostOnce, Topic: "t", BatchSize: 1,
		SessionTimeout: time.Second, FetchMaxWait: time.Second}, slog.New(slog.DiscardHandler))
	if !errors.Is(err, semantics.ErrConfig) {
		t.Errorf("New without an ID: %v, want ErrConfig", err)
	}
}

func TestCountTellsEachTablesLostOnceAndTwice(t *testing.T) {
	ctx := context.Background()
	st := dbtest.NewStore(t)
	exec := func(sql string) {
		t.Helper()
		if _, err := st.Pool().Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	// A lost, B once, C twice in at-most-once; C three times in at-least-once.
	exec(`INSERT INTO teach_at_most_once (order_id, kafka_partition, kafka_offset) VALUES ('B', 0, 1), ('C', 0, 2), ('C', 0, 2), ('other', 0, 9)`)
	exec(`INSERT INTO teach_at_least_once (order_id, kafka_partition, kafka_offset) VALUES ('A', 0, 0), ('B', 0, 1), ('C', 0, 2), ('C', 0, 2), ('C', 0, 2)`)
	exec(`INSERT INTO orders (order_id, customer_id, items, total_amount, status, created_at, kafka_partition, kafka_offset)
		VALUES ('A', 'c', '[]', 1, 'pending', now(), 0, 0), ('B', 'c', '[]', 1, 'pending', now(), 0, 1), ('C', 'c', '[]', 1, 'pending', now(), 0, 2)`)

	got, err := semantics.Count(ctx, st.Pool(), "order-processors", []string{"A", "B", "C", "C"})
	if err != nil {
		t.Fatal(err)
	}
	want := []semantics.Counts{
		{Semantics: semantics.AtMostOnce, Group: "teach-at-most-once", Table: "teach_at_most_once", Produced: 3, Lost: 1, Once: 1, Twice: 1, Rows: 3},
		{Semantics: semantics.AtLeastOnce, Group: "teach-at-least-once", Table: "teach_at_least_once", Produced: 3, Lost: 0, Once: 2, Twice: 1, Rows: 5},
		{Semantics: semantics.ExactlyOnce, Group: "order-processors", Table: "orders", Produced: 3, Lost: 0, Once: 3, Twice: 0, Rows: 3},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Count =\n%+v\nwant\n%+v", got, want)
	}
}

// With nothing killed, each semantics stores every order once: the
// difference between them is only what a crash between the steps does.
func TestATeachingMemberLeftAloneStoresEveryOrderOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st := dbtest.NewStore(t)
	b, err := kafka.StartBroker(kafka.BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	const topic, orders = "food-orders", 60
	pcl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	if _, err := kadm.NewClient(pcl).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	gen := order.NewGenerator(7, nil)
	ids := make([]string, 0, orders)
	for range orders {
		o := gen.Next()
		ids = append(ids, o.OrderID)
		if err := pcl.ProduceSync(ctx, &kgo.Record{Key: []byte(o.CustomerID), Value: o.AppendJSON(nil)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// A message that is no order is left out of every table.
	if err := pcl.ProduceSync(ctx, &kgo.Record{Value: []byte("not an order")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mctx, stop := context.WithCancel(ctx)
	done := make(chan error, len(semantics.Teaching))
	for _, s := range semantics.Teaching {
		m, err := semantics.New([]kgo.Opt{kgo.SeedBrokers(b.Addr())}, st.Pool(), semantics.Config{Semantics: s, ID: string(s) + "-1", Topic: topic,
			BatchSize: 7, SessionTimeout: 6 * time.Second, FetchMaxWait: 100 * time.Millisecond}, log)
		if err != nil {
			t.Fatal(err)
		}
		go func() { done <- m.Run(mctx) }()
	}
	for {
		c, err := semantics.Count(ctx, st.Pool(), "order-processors", ids)
		if err != nil {
			t.Fatal(err)
		}
		if c[0].Once == orders && c[1].Once == orders {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the teaching groups did not store every order once: %+v", c)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	for range semantics.Teaching {
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	for _, table := range []string{"teach_at_most_once", "teach_at_least_once"} {
		var n int
		if err := st.Pool().QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil || n != orders {
			t.Errorf("%s holds %d rows (%v), want %d", table, n, err, orders)
		}
	}
}
