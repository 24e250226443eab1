package producer

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/order"
)

// readAll reads topic from its start to its end now with the isolation
// level given, and returns the order ids read.
func readAll(t *testing.T, addrs []string, level kgo.IsolationLevel) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("orders"), kgo.FetchIsolationLevel(level),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var ids []string
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { ids = append(ids, orderIDOf(r)) })
	}
	slices.Sort(ids)
	return ids
}

// A transaction's orders are in the log from the start, keyed by customer;
// read_committed is given none of them while it is open or once aborted,
// and all of them once committed. Its records carry the producer's id.
func TestATransactionsOrdersAreReadCommittedOnlyOnceCommitted(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, Options(3, 10*time.Second, 0)...),
		TransactionalOptions("test-txn", 20*time.Second)...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	gen := order.NewGenerator(1, nil)
	ids := func(tx *Transaction) []string {
		var out []string
		for _, s := range tx.Sent {
			out = append(out, s.Order.OrderID)
		}
		slices.Sort(out)
		return out
	}

	aborted, err := Begin(ctx, cl, gen, "orders", 12)
	if err != nil {
		t.Fatal(err)
	}
	if aborted.ProducerID <= 0 || len(aborted.Sent) != 12 {
		t.Fatalf("begun: producer id %d, %d orders", aborted.ProducerID, len(aborted.Sent))
	}
	partitions := map[int32]bool{}
	for _, s := range aborted.Sent {
		partitions[s.Partition] = true
	}
	if len(partitions) < 2 {
		t.Errorf("12 orders of different customers all on partitions %v", partitions)
	}
	if _, err := Begin(ctx, cl, gen, "orders", 1); err == nil {
		t.Error("a second transaction began while one is open")
	}
	if got := readAll(t, c.ListenAddrs(), kgo.ReadCommitted()); len(got) != 0 {
		t.Errorf("read_committed was given %d records of an open transaction", len(got))
	}
	if got := readAll(t, c.ListenAddrs(), kgo.ReadUncommitted()); !slices.Equal(got, ids(aborted)) {
		t.Errorf("read_uncommitted read %v, want the open transaction's %v", got, ids(aborted))
	}
	if err := aborted.End(ctx, false); err != nil {
		t.Fatal(err)
	}

	committed, err := Begin(ctx, cl, gen, "orders", 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := committed.End(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, c.ListenAddrs(), kgo.ReadCommitted()); !slices.Equal(got, ids(committed)) {
		t.Errorf("read_committed read %v, want the committed transaction's %v alone", got, ids(committed))
	}
	if got := readAll(t, c.ListenAddrs(), kgo.ReadUncommitted()); len(got) != 17 {
		t.Errorf("read_uncommitted read %d records, want all 17, the aborted ones too", len(got))
	}
}

// RunTransaction held open and stopped meanwhile aborts what it began,
// though it was asked to commit.
func TestATransactionStoppedWhileHeldIsAborted(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, TransactionalOptions("test-txn", 20*time.Second)...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := RunTransaction(ctx, cl, order.NewGenerator(2, nil), "orders", 4, time.Minute, true, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, c.ListenAddrs(), kgo.ReadCommitted()); len(got) != 0 {
		t.Errorf("read_committed read %d orders of a transaction stopped while open", len(got))
	}
	if got := readAll(t, c.ListenAddrs(), kgo.ReadUncommitted()); len(got) != 4 {
		t.Errorf("read_uncommitted read %d records, want the 4 aborted", len(got))
	}
}
