package producer

// Orders written in one Kafka transaction (KIP-98): every record of it is
// in the log at once, but a read_committed reader, as foodpipe's groups
// are, sees none of them until the transaction commits, and never sees them
// if it aborts. Until it ends, the partitions it wrote to stop at their last
// stable offset for those readers, whatever lies after it.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/order"
)

// TransactionalOptions make a producer client transactional: id is its
// transactional.id, which a client that starts again under the same id
// takes over (the broker fences the one before and aborts what it left
// open); timeout is how long the broker lets a transaction stay open
// before it aborts it by itself.
func TransactionalOptions(id string, timeout time.Duration) []kgo.Opt {
	return []kgo.Opt{kgo.TransactionalID(id), kgo.TransactionTimeout(timeout)}
}

// Sent is one order of a transaction, where the broker put it.
type Sent struct {
	Order     order.Order
	Partition int32
	Offset    int64
}

// Transaction is a transaction begun by Begin, its records written and
// acknowledged, not yet ended.
type Transaction struct {
	cl *kgo.Client
	// Sent are its orders in the order they were made.
	Sent []Sent
	// ProducerID and ProducerEpoch are the producer's, as the broker
	// stamped its records: the markers that end it carry the same id.
	ProducerID    int64
	ProducerEpoch int16
}

// Begin begins a transaction on cl, a client made with
// TransactionalOptions, and writes n orders of gen to topic in it, keyed by
// customer as Run does. It returns once the broker has acknowledged every
// one, the transaction left open; on a failure it aborts what it began.
func Begin(ctx context.Context, cl *kgo.Client, gen *order.Generator, topic string, n int) (*Transaction, error) {
	if n < 1 {
		return nil, fmt.Errorf("begin a transaction: %d orders: at least 1", n)
	}
	if err := cl.BeginTransaction(); err != nil {
		return nil, fmt.Errorf("begin a transaction: %w", err)
	}
	t := &Transaction{cl: cl, Sent: make([]Sent, n)}
	recs := make([]*kgo.Record, n)
	for i := range n {
		o := gen.Next()
		t.Sent[i].Order = o
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(o.CustomerID), Value: o.AppendJSON(nil),
			Headers: []kgo.RecordHeader{{Key: order.HeaderOrderID, Value: []byte(o.OrderID)}}}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, errors.Join(fmt.Errorf("write the transaction's orders: %w", err), t.End(context.WithoutCancel(ctx), false))
	}
	for i, r := range recs {
		t.Sent[i].Partition, t.Sent[i].Offset = r.Partition, r.Offset
	}
	t.ProducerID, t.ProducerEpoch = recs[0].ProducerID, recs[0].ProducerEpoch
	return t, nil
}

// End commits the transaction, or aborts it. Before a commit every record
// is flushed (Begin waited for them already, so this is a formality kgo
// asks for); before an abort whatever the client still buffers is dropped,
// so that it cannot slip into a next transaction. A commit the broker
// refuses (it aborted the transaction itself, past its timeout) is aborted
// on the client's side too, so that the client can begin another.
func (t *Transaction) End(ctx context.Context, commit bool) error {
	if !commit {
		if err := t.cl.AbortBufferedRecords(ctx); err != nil {
			return fmt.Errorf("abort the transaction: %w", err)
		}
		if err := t.cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
			return fmt.Errorf("abort the transaction: %w", err)
		}
		return nil
	}
	if err := t.cl.Flush(ctx); err != nil {
		return fmt.Errorf("commit the transaction: flush: %w", err)
	}
	if err := t.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		if aerr := t.cl.EndTransaction(ctx, kgo.TryAbort); aerr != nil {
			return fmt.Errorf("commit the transaction: %w (and abort it: %w)", err, aerr)
		}
		return fmt.Errorf("commit the transaction: %w", err)
	}
	return nil
}

// RunTransaction writes n orders of gen to topic in one transaction on cl
// (made with TransactionalOptions, its timeout above hold), keeps it open
// for hold, then commits or aborts it, logging each step with where the
// records are. A stop asked for (ctx) while it is open aborts it: nothing
// half-decided is committed.
func RunTransaction(ctx context.Context, cl *kgo.Client, gen *order.Generator, topic string, n int, hold time.Duration, commit bool,
	log *slog.Logger) error {
	t, err := Begin(ctx, cl, gen, topic, n)
	if err != nil {
		return err
	}
	offsets := OffsetsText(t.Sent)
	log.Info("transaction open", slog.Int("orders", n), slog.Int64("producer_id", t.ProducerID), slog.String("offsets", offsets),
		slog.String("first_order_id", t.Sent[0].Order.OrderID), slog.Duration("hold", hold))
	if hold > 0 {
		timer := time.NewTimer(hold)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			commit = false
		}
	}
	// The end is not cancelled with ctx: an EndTransaction cut short
	// leaves its outcome unknown (kgo's EndTransaction).
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := t.End(endCtx, commit); err != nil {
		return err
	}
	what := "transaction aborted"
	if commit {
		what = "transaction committed"
	}
	log.Info(what, slog.Int("orders", n), slog.String("offsets", offsets))
	return nil
}

// OffsetsText says where orders of a transaction are, by partition
// ("p0 40–43, p2 17").
func OffsetsText(sent []Sent) string {
	by := map[int32][]int64{}
	for _, s := range sent {
		by[s.Partition] = append(by[s.Partition], s.Offset)
	}
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(by)) {
		offs := by[p]
		lo, hi := slices.Min(offs), slices.Max(offs)
		if lo == hi {
			parts = append(parts, fmt.Sprintf("p%d %d", p, lo))
		} else {
			parts = append(parts, fmt.Sprintf("p%d %d–%d", p, lo, hi))
		}
	}
	return strings.Join(parts, ", ")
}
