package store

// Queries that audit what the pipeline stored, for the lab's invariants:
// counts read in one snapshot, the orders read back, and repeats.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"foodpipe/internal/order"
)

// Tally is what a group has stored, read in one snapshot: the orders, the
// dead letters, and the messages whose offsets are stored (every message a
// member has handled, whatever became of it).
type Tally struct {
	Orders, DeadLetters, Handled int64
}

// Tally counts what group has stored. The three numbers come from one
// snapshot (REPEATABLE READ): a batch's rows, dead letters and offsets are
// written in one transaction, so they are seen together or not at all.
func (s *Store) Tally(ctx context.Context, group string) (Tally, error) {
	var t Tally
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM orders),
			(SELECT count(*) FROM dead_letters WHERE group_id = $1),
			(SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE group_id = $1)`, group).
			Scan(&t.Orders, &t.DeadLetters, &t.Handled)
	})
	if err != nil {
		return Tally{}, fmt.Errorf("tally: %w", err)
	}
	return t, nil
}

// Orders reads back the stored orders among ids, as the consumer stored
// them (in no particular order); ids with no order are left out.
func (s *Store) Orders(ctx context.Context, ids []string) ([]order.Order, error) {
	rows, err := s.pool.Query(ctx, `SELECT order_id, customer_id, items, total_amount::text, status, created_at
		FROM orders WHERE order_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	var out []order.Order
	var o order.Order
	var items []byte
	var total, status string
	var created time.Time
	_, err = pgx.ForEachRow(rows, []any{&o.OrderID, &o.CustomerID, &items, &total, &status, &created}, func() error {
		got := order.Order{OrderID: o.OrderID, CustomerID: o.CustomerID, Status: order.Status(status), CreatedAt: created.UTC()}
		if err := json.Unmarshal(items, &got.Items); err != nil {
			return fmt.Errorf("items of %s: %w", o.OrderID, err)
		}
		m, err := order.ParseMoney(total)
		if err != nil {
			return fmt.Errorf("total of %s: %w", o.OrderID, err)
		}
		got.TotalAmount = m
		out = append(out, got)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	return out, nil
}

// Repeats returns up to limit order ids stored more than once, and up to
// limit Kafka positions (partition/offset) that more than one order stored
// since since came from. Both are empty while the pipeline keeps its
// promise; the primary key guards the first, the offset fence the second.
// (Older rows may come from an earlier topic of the same name, whose
// offsets started again at 0.)
func (s *Store) Repeats(ctx context.Context, since time.Time, limit int) ([]string, error) {
	return collect(ctx, s, "find repeats", `(SELECT 'order ' || order_id FROM orders GROUP BY order_id HAVING count(*) > 1 LIMIT $1)
		UNION ALL
		(SELECT 'message ' || kafka_partition || '/' || kafka_offset FROM orders WHERE processed_at >= $2
			GROUP BY kafka_partition, kafka_offset HAVING count(*) > 1 LIMIT $1)`, pgx.RowTo[string], limit, since)
}
