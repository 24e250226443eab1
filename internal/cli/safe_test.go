package cli

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/twmb/franz-go/pkg/kgo"
)

// hasRaw reports whether out holds any character a terminal obeys: a
// control character (C0, DEL, C1) other than the newline, or a bidirectional
// mark, override or isolate (report.safe escapes them all).
func hasRaw(out string) bool {
	for _, r := range out {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) {
			return true
		}
	}
	return false
}

// Anyone who can join the group names their client as they like; status
// shows the name escaped, never obeyed.
func TestStatusEscapesAHostileMemberName(t *testing.T) {
	addr := broker(t)
	vars := []string{"KAFKA_BROKERS", addr}
	ctx := context.Background()
	if err := newRun(t, vars...).do(ctx, "topic", "create"); err != nil {
		t.Fatal(err)
	}
	hostile := "evil\x1b]0;pwned\a\x1b[2J\u009b31m\u202eolleh"
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(hostile), kgo.ConsumerGroup("order-processors"), kgo.ConsumeTopics("food-orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	cl.PollFetches(pctx) // joins the group
	cancel()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := newRun(t, vars...)
		if err := r.do(ctx, "status"); err != nil {
			t.Fatal(err)
		}
		out := r.stdout.String()
		if strings.Contains(out, `evil\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eolleh`) {
			if hasRaw(out) {
				t.Errorf("status wrote raw control characters:\n%q", out)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the member never showed, escaped:\n%q", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A dead letter's headers come from whoever wrote the message; dlq list
// shows them escaped.
func TestDlqListEscapesHostileHeaders(t *testing.T) {
	addr := broker(t)
	vars := []string{"KAFKA_BROKERS", addr}
	ctx := context.Background()
	if err := newRun(t, vars...).do(ctx, "topic", "create"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("food-orders.dlq"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x\x1b[2J"), Headers: []kgo.RecordHeader{
		{Key: "dlq.reason", Value: []byte("bad\x1b[2J\u202e")}, {Key: "dlq.source.topic", Value: []byte("t\a")},
		{Key: "dlq.failed_at", Value: []byte("\u009b1m")},
	}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r := newRun(t, vars...)
	if err := r.do(ctx, "dlq", "list"); err != nil {
		t.Fatal(err)
	}
	out := r.stdout.String()
	if hasRaw(out) || !strings.Contains(out, `bad\x1b[2J\u202e`) || !strings.Contains(out, `t\x07`) {
		t.Errorf("dlq list:\n%q", out)
	}
}
