package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"foodpipe/internal/harness"
	"foodpipe/internal/mail"
	"foodpipe/internal/order"
)

// The notifier (foodpipe notify) is SIGKILLed ten times while 1,000 orders
// arrive at 100/s, then its mail server is down for 20 s while more arrive.
// Its guarantee is at least once, with every repeat accounted for: each
// valid order has an email (or, for the one customer whose address the
// server refuses, a dead letter saying so), no invalid message has one,
// and the duplicates at the receiver are no more than the emails the
// notifiers sent again because one was killed between sending and
// recording, each of them one of those.
func TestNotifierKilledAndItsMailServerDownEmailsEveryOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	ctx := context.Background()
	p := newPipeline(t)
	ms, err := harness.StartMailServer(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ms.Stop)
	env := append(p.env, "SMTP_URL="+ms.SMTPURL, "MAIL_API_URL="+ms.APIURL)
	// Each notifier serves its metrics here, one at a time.
	notifierEnv := append(env, "METRICS_ADDR="+freeAddr(t), "STATS_INTERVAL=1s")
	if code := start(t, "topic", env, "topic", "create").wait(30 * time.Second); code != 0 {
		t.Fatalf("topic create exited %d", code)
	}
	// Invalid orders: a quantity of 0 fails validation; none is notified.
	const invalid = 20
	var bad [][]byte
	for i := range invalid {
		bad = append(bad, fmt.Appendf(nil, `{"order_id":"BAD-%d","customer_id":"CUST-10001","items":[{"name":"Burger","quantity":0,"price":8.99}],"total_amount":0.00,"status":"pending","created_at":"2026-01-02T03:04:05Z"}`, i))
	}
	produceRaw(t, p.addr, bad...)

	notifier := func() *proc { return start(t, "n1", notifierEnv, "notify", "--id", "n1") }
	n := notifier()
	const first = 1000
	producer := start(t, "producer", env, "produce", "--count", fmt.Sprint(first), "--rate", "100")
	kills := 0
	for !producer.exited() || kills < 10 {
		time.Sleep(time.Duration(400+rand.IntN(800)) * time.Millisecond)
		_ = n.Signal(syscall.SIGKILL)
		n.wait(5 * time.Second)
		n = notifier() // its place back at once: static membership
		kills++
	}
	if code := producer.wait(time.Minute); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	t.Logf("killed the notifier %d times", kills)
	eventually(t, 60*time.Second, "the notifier to catch up", func() bool {
		return notifyLag(t, p) == 0
	})

	// The mail server is down for 20 s while orders keep coming.
	ms.Stop()
	down := time.Now()
	const second = 300
	if code := start(t, "producer-2", env, "produce", "--count", fmt.Sprint(second), "--rate", "100").wait(time.Minute); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	time.Sleep(20*time.Second - time.Since(down))
	if lag := notifyLag(t, p); lag < second {
		t.Errorf("lag %d after 20 s without a mail server, want at least %d: orders were skipped", lag, second)
	}
	if err := ms.Start(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the notifier to catch up after the outage", func() bool {
		return notifyLag(t, p) == 0
	})

	in, err := ms.Inbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range in.Messages {
		id := mail.OrderOf(m.MessageID)
		if id == "" {
			t.Errorf("an email with a Message-ID foodpipe did not make: %q", m.MessageID)
		}
		got[id]++
		if strings.HasPrefix(id, "BAD-") {
			t.Errorf("invalid order %s was notified", id)
		}
	}
	ids := topicOrderIDs(t, p.addr, "food-orders", first+second+invalid)
	refused := map[string]bool{}
	for _, id := range queryStrings(t, p.db, `SELECT order_id FROM notifications WHERE group_id = 'order-notifications' AND state = 'refused' AND recipient = $1`,
		order.Email(order.MovedAway)) {
		refused[id] = true
	}
	missing := 0
	for id := range ids {
		if strings.HasPrefix(id, "BAD-") {
			continue
		}
		if got[id] == 0 && !refused[id] {
			missing++
			if missing <= 5 {
				t.Errorf("order %s has no email and no dead letter", id)
			}
		}
	}
	if missing > 0 || len(ids) != first+second {
		t.Errorf("%d of %d valid orders without an email (the topic names %d)", missing, first+second, len(ids))
	}
	if len(refused) == 0 {
		t.Errorf("no order of %s refused: the refusal path went untested", order.MovedAway)
	}
	if dead := query[int64](t, p.db, `SELECT count(*) FROM dead_letters WHERE group_id = 'order-notifications' AND reason = 'mail_refused'`); dead != int64(len(refused)) {
		t.Errorf("%d dead letters for %d refused addresses", dead, len(refused))
	}
	if open := query[int64](t, p.db, `SELECT count(*) FROM notifications WHERE state = 'sending'`); open != 0 {
		t.Errorf("%d notifications still claimed and never settled", open)
	}

	// The prediction: an order reaches the receiver at most once more than
	// it was sent again in doubt (claimed from a notifier killed between
	// sending and recording), so duplicates are at most the sends in doubt,
	// and an order never in doubt arrives once.
	inDoubt := map[string]int{}
	withConn(t, p.db, func(ctx context.Context, conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT order_id, in_doubt FROM notifications WHERE group_id = 'order-notifications' AND in_doubt > 0`)
		if err != nil {
			return err
		}
		var id string
		var k int
		_, err = pgx.ForEachRow(rows, []any{&id, &k}, func() error { inDoubt[id] = k; return nil })
		return err
	})
	sends := 0
	for _, k := range inDoubt {
		sends += k
	}
	for id, k := range got {
		if k > 1+inDoubt[id] {
			t.Errorf("order %s emailed %d times, sent again in doubt %d times", id, k, inDoubt[id])
		}
	}
	// In doubt are at most the emails of the batches in hand at each kill:
	// NOTIFY_BATCH_SIZE (50) per writer, CONSUMER_WRITERS (3) writers.
	if sends > kills*50*3 {
		t.Errorf("%d sends in doubt after %d kills, more than %d batches of 50 hold", sends, kills, kills*3)
	}
	if in.Duplicates > sends {
		t.Errorf("%d duplicates at the receiver, more than the %d sends in doubt", in.Duplicates, sends)
	}
	if sent := query[int64](t, p.db, `SELECT count(*) FROM notifications WHERE group_id = 'order-notifications' AND state = 'sent'`); sent != int64(in.Distinct) {
		t.Errorf("%d notifications recorded sent, the receiver has %d distinct", sent, in.Distinct)
	}
	t.Logf("%d emails, %d distinct, %d duplicates, %d sends in doubt (%d orders), %d refused, after %d kills and a 20 s outage",
		len(in.Messages), in.Distinct, in.Duplicates, sends, len(inDoubt), len(refused), kills)
	// The notifier reads the receiver's duplicates into its metrics.
	eventually(t, 10*time.Second, fmt.Sprintf("foodpipe_notify_receiver_duplicates at %d", in.Duplicates), func() bool {
		fams, err := n.Metrics(ctx)
		v, ok := harness.Gauge(fams, "foodpipe_notify_receiver_duplicates")
		return err == nil && ok && v == float64(in.Duplicates)
	})
	if code, took := n.stop(syscall.SIGTERM, 10*time.Second); code != 0 {
		t.Errorf("notifier: SIGTERM exit %d after %v", code, took)
	}
}

// notifyLag is what the notifications group has still to settle, by the
// offsets it stored with its records: Kafka's committed offsets may lag
// those (a member killed before its Kafka commit resumes from the
// database's, and commits again only with its next batch).
func notifyLag(t *testing.T, p *pipeline) int64 {
	t.Helper()
	stored := query[int64](t, p.db, `SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets WHERE group_id = 'order-notifications'`)
	return topicMessages(t, p.addr, "food-orders") - stored
}

func queryStrings(t *testing.T, url, sql string, args ...any) []string {
	t.Helper()
	var out []string
	withConn(t, url, func(ctx context.Context, conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return out
}
