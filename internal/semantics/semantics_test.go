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

	"foodpipe/internal/config"
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
	whole := semantics.Config{Semantics: semantics.AtMostOnce, ID: "m", Topic: "t", BatchSize: 1,
		SessionTimeout: time.Second, FetchMaxWait: time.Second, GroupProtocol: config.GroupProtocolClassic}
	for name, edit := range map[string]func(*semantics.Config){
		"without an ID":            func(c *semantics.Config) { c.ID = "" },
		"without a group protocol": func(c *semantics.Config) { c.GroupProtocol = "" },
		"with an unknown protocol": func(c *semantics.Config) { c.GroupProtocol = "eager" },
		"without a batch size":     func(c *semantics.Config) { c.BatchSize = 0 },
	} {
		c := whole
		edit(&c)
		if _, err := semantics.New(nil, nil, c, slog.New(slog.DiscardHandler)); !errors.Is(err, semantics.ErrConfig) {
			t.Errorf("New %s: %v, want ErrConfig", name, err)
		}
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
// The members speak either group protocol, as the pipeline's do.
func TestATeachingMemberLeftAloneStoresEveryOrderOnce(t *testing.T) {
	for _, protocol := range config.GroupProtocols {
		t.Run("under the "+protocol+" protocol", func(t *testing.T) { leftAlone(t, protocol) })
	}
}

func leftAlone(t *testing.T, protocol string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st := dbtest.NewStore(t)
	b, err := kafka.StartBroker(kafka.BrokerOptions{GroupSessionTimeout: 6 * time.Second})
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
			BatchSize: 7, SessionTimeout: 6 * time.Second, FetchMaxWait: 100 * time.Millisecond, GroupProtocol: protocol}, log)
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
	// Each group runs the protocol its members were given.
	for _, s := range semantics.Teaching {
		v, err := kafka.InspectGroup(ctx, kadm.NewClient(pcl), topic, semantics.Group(s))
		if err != nil || v.Protocol != protocol {
			t.Errorf("group %s runs %q (%v), want %q", semantics.Group(s), v.Protocol, err, protocol)
		}
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
