package notify_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"foodpipe/internal/harness"
	"foodpipe/internal/mail"
	"foodpipe/internal/notify"
	"foodpipe/internal/order"
	"foodpipe/internal/store"
	"foodpipe/internal/store/dbtest"
	"foodpipe/internal/wire"
)

// A batch of n generated orders at offsets from, from+1, ... of partition 0,
// whose first only is of order.MovedAway, whose address the server refuses.
func batch(seed uint64, n int, from int64) store.Batch {
	g := order.NewGenerator(seed, nil)
	b := store.Batch{Group: "notify-test", Offsets: []store.PartitionOffset{{Topic: "t", Partition: 0, From: from, Next: from + int64(n)}},
		SetAside: func(r store.Row, err error) store.DeadLetter {
			return store.DeadLetter{Scope: "t", Topic: "t", Partition: r.Partition, Offset: r.Offset, Reason: "mail_refused", Error: err.Error()}
		}}
	for i := range n {
		o := g.Next()
		switch {
		case i == 0:
			o.CustomerID = order.MovedAway
		case o.CustomerID == order.MovedAway:
			o.CustomerID = "CUST-10001" // one refusal a batch, the first order
		}
		b.Rows = append(b.Rows, store.Row{Order: o, Partition: 0, Offset: from + int64(i)})
	}
	return b
}

// The notifier's store against a real Mailpit and PostgreSQL: a batch is
// sent once, the moved customer's address refused into a dead letter; with
// the server down the batch fails as transient, and once it is back the
// retry sends only what it had not sent.
func TestABatchIsSentOnceRefusedIntoADeadLetterAndRetriedWithoutResendingAfterAnOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	ctx := context.Background()
	ms, err := harness.StartMailServer(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ms.Stop)
	st := dbtest.NewStore(t)
	server, err := mail.ParseURL(ms.SMTPURL)
	if err != nil {
		t.Fatal(err)
	}
	m := wire.NewMetrics("order-notifications")
	s := notify.New(st, server, m, slog.New(slog.NewTextHandler(io.Discard, nil)))

	first := batch(1, 10, 0)
	res, err := s.WriteBatch(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 9 || len(res.Rejected) != 1 || res.DeadLetters != 1 || !errors.Is(res.Rejected[0].Err, store.ErrRefused) {
		t.Fatalf("result %+v, want 9 sent and the moved customer's refused into a dead letter", res)
	}
	in, err := ms.Inbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Messages) != 9 || in.Duplicates != 0 {
		t.Fatalf("inbox holds %d emails, %d duplicates; want 9, none", len(in.Messages), in.Duplicates)
	}
	for _, msg := range in.Messages {
		if len(msg.To) != 1 || msg.To[0] == order.Email(order.MovedAway) || mail.OrderOf(msg.MessageID) == "" {
			t.Errorf("email %+v: want one recipient at example.com and a Message-ID naming its order", msg)
		}
	}

	// The same orders delivered again (a rebalance, a replay): settled,
	// none sent again.
	again := first
	again.Offsets = []store.PartitionOffset{{Topic: "t", Partition: 0, From: 10, Next: 20}}
	for i := range again.Rows {
		again.Rows[i].Offset += 10
	}
	if res, err = s.WriteBatch(ctx, again); err != nil || len(res.Duplicates) != 10 || res.Inserted != 0 {
		t.Errorf("the batch again: %+v, %v; want 10 duplicates, none sent", res, err)
	}

	start := time.Now()
	ms.Stop()
	t.Logf("mailpit stopped in %v", time.Since(start))
	next := batch(2, 20, 20)
	if _, err := s.WriteBatch(ctx, next); !errors.Is(err, store.ErrUnavailable) || !store.IsTransient(err) {
		t.Fatalf("with the server down: %v, want a transient ErrUnavailable", err)
	}
	if err := s.Writable(ctx); err == nil {
		t.Error("Writable with the mail server down")
	}
	start = time.Now()
	if err := ms.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("mailpit started in %v", time.Since(start))
	if _, err := s.WriteBatch(ctx, next); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if in, err = ms.Inbox(ctx); err == nil && len(in.Messages) >= 9+19 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(in.Messages) != 9+19 || in.Duplicates != 0 {
		t.Errorf("inbox holds %d emails, %d duplicates after the outage; want %d, none", len(in.Messages), in.Duplicates, 9+19)
	}
	if got := testutil.ToFloat64(m.NotifySent); got != 9+19 {
		t.Errorf("foodpipe_notify_sent_total %v, want %d", got, 9+19)
	}
	if testutil.ToFloat64(m.NotifyRetried) < 1 || testutil.ToFloat64(m.NotifyRefused) != 2 || testutil.ToFloat64(m.NotifyInDoubt) != 0 {
		t.Errorf("retried %v (want ≥ 1), refused %v (want 2), in doubt %v (want 0)", testutil.ToFloat64(m.NotifyRetried),
			testutil.ToFloat64(m.NotifyRefused), testutil.ToFloat64(m.NotifyInDoubt))
	}
}
