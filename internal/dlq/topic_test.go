package dlq_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/dlq"
	"foodpipe/internal/kafka"
	"foodpipe/internal/store"
)

// A dead letter read back has its reason and source; replayed, it goes to
// the orders topic once with where it came from, and a second replay skips it.
func TestReaderReplaysEachDeadLetterOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := kafka.StartBroker(kafka.BrokerOptions{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	base := kafka.ClientOpts(kafka.Options{Brokers: []string{b.Addr()}})
	cl, err := kgo.NewClient(base...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := kafka.EnsureTopics(ctx, adm, kafka.TopicSpec{Name: "orders", Partitions: 1, ReplicationFactor: 1},
		kafka.TopicSpec{Name: "orders.dlq", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	dead := store.DeadLetter{Topic: "orders", Partition: 0, Offset: 7, Reason: "not_json", Error: "not JSON",
		Key: []byte("c1"), Value: []byte("{oops"), Headers: []store.Header{{Key: "trace", Value: []byte("t1")}}, FailedAt: time.Now()}
	if err := cl.ProduceSync(ctx, dlq.Record("orders.dlq", "g", dead, false)).FirstErr(); err != nil {
		t.Fatal(err)
	}

	r := dlq.Reader{Base: base, Admin: adm, Topic: "orders.dlq"}
	letters, err := r.Letters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 || letters[0].Reason != "not_json" || letters[0].SourceOffset != "7" || letters[0].ReplayedAt != "" {
		t.Fatalf("letters = %+v", letters)
	}
	plan, err := r.Replay(ctx, cl, "orders", letters, false, false, kafka.TopicSpec{ReplicationFactor: 1})
	if err != nil || len(plan) != 1 || !plan[0].Replay {
		t.Fatalf("first replay: %+v, %v", plan, err)
	}
	replayed, err := kafka.ReadTopic(ctx, base, adm, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(replayed) != 1 || string(replayed[0].Value) != "{oops" || header(replayed[0], dlq.HeaderReplayedFrom) != letters[0].Position() ||
		header(replayed[0], "trace") != "t1" || header(replayed[0], dlq.HeaderReason) != "" {
		t.Fatalf("replayed records %+v", replayed)
	}

	letters, err = r.Letters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if letters[0].ReplayedAt == "" {
		t.Error("a replayed letter reads back without when it was replayed")
	}
	plan, err = r.Replay(ctx, cl, "orders", letters, true, false, kafka.TopicSpec{ReplicationFactor: 1})
	if err != nil || len(plan) != 1 || plan[0].Replay || plan[0].Why != "replayed before" {
		t.Fatalf("second replay: %+v, %v", plan, err)
	}
	if again, _ := kafka.ReadTopic(ctx, base, adm, "orders"); len(again) != 1 {
		t.Errorf("the orders topic holds %d records after a second replay, want 1", len(again))
	}
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
