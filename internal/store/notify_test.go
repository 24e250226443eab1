package store_test

import (
	"errors"
	"testing"
	"time"

	"foodpipe/internal/order"
	"foodpipe/internal/store"
	"foodpipe/internal/store/dbtest"
)

// A notifier's batch of three orders at offsets 10, 11, 12 of partition 0.
func noticeBatch(group string, from int64) (store.Batch, []store.Notice) {
	g := order.NewGenerator(7, func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) })
	b := store.Batch{Group: group, Offsets: []store.PartitionOffset{{Topic: "t", Partition: 0, From: from, Next: from + 3}},
		SetAside: func(r store.Row, err error) store.DeadLetter {
			return store.DeadLetter{Scope: "t", Topic: "t", Partition: r.Partition, Offset: r.Offset, Reason: "mail_refused", Error: err.Error()}
		}}
	var ns []store.Notice
	for i := range 3 {
		o := g.Next()
		b.Rows = append(b.Rows, store.Row{Order: o, Partition: 0, Offset: from + int64(i)})
		ns = append(ns, store.Notice{OrderID: o.OrderID, To: order.Email(o.CustomerID), MessageID: "<" + o.OrderID + "@x>"})
	}
	return b, ns
}

func TestANotificationClaimedByAnEndedSenderIsInDoubtAndOneRecordedIsNeverClaimedAgain(t *testing.T) {
	t.Parallel()
	st := dbtest.NewStore(t)
	n := st.Notifications()
	ctx := ctxFor(t)
	b, ns := noticeBatch("g", 10)

	c, err := n.Claim(ctx, "g", "first", b.Offsets, ns)
	if err != nil || len(c.Open) != 3 || len(c.TakenOver) != 0 {
		t.Fatalf("first claim = %+v, %v; want 3 open, none taken over", c, err)
	}
	if c, err = n.Claim(ctx, "g", "first", b.Offsets, ns); err != nil || len(c.Open) != 3 || len(c.TakenOver) != 0 {
		t.Fatalf("the same sender's claim again = %+v, %v; want 3 open and none in doubt of itself", c, err)
	}
	if sending, err := n.Sending(ctx, "g"); err != nil || len(sending) != 3 {
		t.Fatalf("Sending = %v, %v; want the 3 claimed", sending, err)
	}
	// "first" ended between its claim and its record: "second" takes over.
	if c, err = n.Claim(ctx, "g", "second", b.Offsets, ns); err != nil || len(c.Open) != 3 || len(c.TakenOver) != 3 {
		t.Fatalf("a claim taken over = %+v, %v; want 3 open, 3 taken over", c, err)
	}
	refused := map[string]error{ns[2].OrderID: errors.New("550 no such mailbox")}
	res, err := n.Record(ctx, b, map[string]bool{ns[0].OrderID: true, ns[1].OrderID: true}, refused)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inserted != 2 || len(res.Rejected) != 1 || res.DeadLetters != 1 || !errors.Is(res.Rejected[0].Err, store.ErrRefused) {
		t.Errorf("Record = %+v; want 2 sent, 1 refused with its dead letter", res)
	}
	if c, err = n.Claim(ctx, "g", "third", nil, ns); err != nil || len(c.Open) != 0 {
		t.Errorf("a claim of settled orders = %+v, %v; want none open", c, err)
	}
	if sending, err := n.Sending(ctx, "g"); err != nil || len(sending) != 0 {
		t.Errorf("Sending = %v, %v after the record; want none", sending, err)
	}
	count, err := n.CountNotices(ctx, "g", nil)
	if err != nil {
		t.Fatal(err)
	}
	if count != (store.NoticeCount{Sent: 2, Refused: 1, InDoubt: 3, Resent: 2}) {
		t.Errorf("CountNotices = %+v, want 2 sent, 1 refused, 3 sends in doubt, 2 of them of emails recorded sent", count)
	}
	// The batch again, from the same offsets: the fence refuses it.
	if _, err := n.Claim(ctx, "g", "third", b.Offsets, ns); !errors.Is(err, store.ErrStaleOffsets) {
		t.Errorf("a claim behind the stored offsets: %v, want ErrStaleOffsets", err)
	}
	if _, err := n.Record(ctx, b, nil, nil); !errors.Is(err, store.ErrStaleOffsets) {
		t.Errorf("a record behind the stored offsets: %v, want ErrStaleOffsets", err)
	}
	if got, err := n.Offsets(ctx, "g", "t"); err != nil || got[0] != 13 {
		t.Errorf("stored offsets %v, %v; want partition 0 at 13", got, err)
	}
}

func TestAMailServerAwayIsTransientAndARefusalIsNot(t *testing.T) {
	t.Parallel()
	if !store.IsTransient(errors.Join(store.ErrUnavailable, errors.New("dial tcp: connection refused"))) {
		t.Error("a mail server away is not transient")
	}
	if store.IsTransient(store.ErrRefused) {
		t.Error("a refusal for good is transient")
	}
}
