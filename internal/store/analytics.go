package store

// The analytics group's store: aggregates of the orders, kept exactly once.

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Analytics writes the aggregates of `foodpipe analytics` (see
// migrations/00004_create_analytics.sql). It is a consumer's store like
// Store is: a batch's increments and the group's next offsets are written in
// one transaction behind the same offset fence, and an order id the group
// has counted before is never counted again. Invalid orders are skipped: the
// orders group dead-letters them, so this one records no dead letters.
type Analytics struct{ s *Store }

// Analytics is the analytics store on s's pool.
func (s *Store) Analytics() *Analytics { return &Analytics{s: s} }

// Offsets returns the next offset to read per partition, as stored.
func (a *Analytics) Offsets(ctx context.Context, group, topic string) (map[int32]int64, error) {
	return a.s.Offsets(ctx, group, topic)
}

// GroupOffsets returns every next offset stored for group (see Store.GroupOffsets).
func (a *Analytics) GroupOffsets(ctx context.Context, group string) ([]StoredOffset, error) {
	return a.s.GroupOffsets(ctx, group)
}

// Writable checks that the server answers and takes writes (see
// Store.Writable).
func (a *Analytics) Writable(ctx context.Context) error { return a.s.Writable(ctx) }

// PublishDeadLetters publishes nothing: the analytics group records none.
func (a *Analytics) PublishDeadLetters(context.Context, string, int, func(context.Context, []DeadLetter) []error) (int, error) {
	return 0, nil
}

// markSeen records the batch's order ids as counted by the group and returns
// those it had not counted before.
const markSeen = `INSERT INTO analytics_orders_seen (group_id, order_id)
SELECT $1, id FROM unnest($2::text[]) AS id
ON CONFLICT DO NOTHING
RETURNING order_id`

// addAggregates adds a batch's increments to the three tables. Money
// travels as cents (exact integers) and becomes NUMERIC in the database.
const addAggregates = `WITH m AS (
	INSERT INTO analytics_minute AS t (group_id, minute, orders, revenue)
	SELECT $1, minute, n, cents::numeric / 100 FROM unnest($2::timestamptz[], $3::bigint[], $4::bigint[]) AS u(minute, n, cents)
	ON CONFLICT (group_id, minute) DO UPDATE
		SET orders = t.orders + EXCLUDED.orders, revenue = t.revenue + EXCLUDED.revenue
	RETURNING 1
), i AS (
	INSERT INTO analytics_item_minute AS t (group_id, minute, item, quantity, revenue)
	SELECT $1, minute, item, qty, cents::numeric / 100 FROM unnest($5::timestamptz[], $6::text[], $7::bigint[], $8::bigint[]) AS u(minute, item, qty, cents)
	ON CONFLICT (group_id, minute, item) DO UPDATE
		SET quantity = t.quantity + EXCLUDED.quantity, revenue = t.revenue + EXCLUDED.revenue
	RETURNING 1
), c AS (
	INSERT INTO analytics_customer AS t (group_id, customer_id, orders, spent, last_order_at)
	SELECT $1, customer, n, cents::numeric / 100, last FROM unnest($9::text[], $10::bigint[], $11::bigint[], $12::timestamptz[]) AS u(customer, n, cents, last)
	ON CONFLICT (group_id, customer_id) DO UPDATE
		SET orders = t.orders + EXCLUDED.orders, spent = t.spent + EXCLUDED.spent,
			last_order_at = greatest(t.last_order_at, EXCLUDED.last_order_at)
	RETURNING 1
)
SELECT (SELECT count(*) FROM m) + (SELECT count(*) FROM i) + (SELECT count(*) FROM c)`

// WriteBatch counts the batch's orders the group has not counted yet and
// stores the group's next offsets, in one transaction. Rows the group
// counted before, or repeated in the batch, are reported as duplicates
// (different content under one order id as conflicts; the first counted
// wins). As with Store.WriteBatch, a batch behind the stored offsets writes
// nothing and fails with ErrStaleOffsets.
func (a *Analytics) WriteBatch(ctx context.Context, b Batch) (Result, error) {
	if err := b.validate(); err != nil {
		return Result{}, err
	}
	if len(b.Rows) == 0 && len(b.Offsets) == 0 {
		return Result{}, nil
	}
	w := newBatchWrite(&b)
	if err := a.writeTx(ctx, w); err != nil {
		a.s.resetIfReadOnly(err)
		return Result{}, fmt.Errorf("write analytics batch: %w", err)
	}
	return w.result(), nil
}

// writeTx counts the batch in two round trips. The first carries the
// BEGIN, the offset fence and the marking of the batch's orders as counted
// (Store.begin), and brings back those the group had not counted; the
// second carries their increments to the aggregates and the COMMIT. When
// the increments fail, PostgreSQL skips the COMMIT that follows them in
// the pipeline, and the transaction is rolled back. (It took four: the
// BEGIN with the fence, the marking, the increments, the COMMIT, each a
// write, a wait and a wake-up of the member.)
func (a *Analytics) writeTx(ctx context.Context, w *batchWrite) error {
	var fresh []string
	var queue func(*pgx.Batch) string
	if len(w.unique) > 0 {
		ids := make([]string, len(w.unique))
		for k, i := range w.unique {
			ids[k] = w.b.Rows[i].Order.OrderID
		}
		queue = func(q *pgx.Batch) string {
			q.Queue(markSeen, w.b.Group, ids).Query(func(rows pgx.Rows) error {
				var err error
				fresh, err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			})
			return "mark orders counted"
		}
	}
	tx, end, err := a.s.begin(ctx, w, queue, false)
	if err != nil {
		return err
	}
	defer end()
	isFresh := make(map[string]bool, len(fresh))
	for _, id := range fresh {
		isFresh[id] = true
	}
	var add increments
	for _, i := range w.unique {
		if o := w.b.Rows[i].Order; isFresh[o.OrderID] {
			add.order(o.CreatedAt, o.CustomerID, int64(o.TotalAmount), o.Items)
		} else {
			w.fates[i] = duplicate
		}
	}
	if len(fresh) == 0 {
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	}
	q := &pgx.Batch{}
	var added bool
	q.Queue(addAggregates, append([]any{w.b.Group}, add.args()...)...).Exec(func(pgconn.CommandTag) error { added = true; return nil })
	q.Queue("COMMIT")
	if err := tx.SendBatch(ctx, q).Close(); err != nil {
		if !added {
			return fmt.Errorf("add aggregates: %w", err)
		}
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
