package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestSafeEscapesWhatATerminalWouldObey(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain text is kept", "foodpipe-alice", "foodpipe-alice"},
		{"text in other scripts is kept", "café 注文 🍔", "café 注文 🍔"},
		{"an OSC window title with BEL", "\x1b]0;pwned\a", `\x1b]0;pwned\x07`},
		{"a clear-screen CSI", "\x1b[2J", `\x1b[2J`},
		{"a C1 CSI", "\u009b2J", `\x9b2J`},
		{"a right-to-left override", "abc\u202edef", `abc\u202edef`},
		{"an isolate", "\u2066x\u2069", `\u2066x\u2069`},
		{"a newline and a tab", "a\nb\tc", `a\x0ab\x09c`},
		{"DEL", "a\x7f", `a\x7f`},
		{"bytes that are not UTF-8", "a\xffb", `a\xffb`},
		{"a backslash, so that escapes stay unambiguous", `a\x1b`, `a\\x1b`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := safe(tt.in); got != tt.want {
				t.Errorf("safe(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// hasRaw reports whether out holds any byte or character a terminal obeys.
func hasRaw(out string) bool {
	for _, r := range out {
		if r != '\n' && (unsafeRune(r) || r == '\x1b') {
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
