package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// bisect stores rows in a savepoint; if PostgreSQL refuses one of them, it
// rolls the savepoint back and tries each half, down to single rows, which
// are then rejected. k refused rows among n cost about k·log2(n) attempts.
func (w *batchWrite) bisect(ctx context.Context, tx pgx.Tx, rows []int) error {
	if len(rows) == 0 {
		return nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	err = w.store(ctx, sp, rows, careful)
	if err == nil {
		if err := sp.Commit(ctx); err != nil {
			return fmt.Errorf("release savepoint: %w", err)
		}
		return nil
	}
	if rbErr := sp.Rollback(ctx); rbErr != nil {
		return fmt.Errorf("rollback to savepoint: %w", rbErr)
	}
	if !isDataException(err) {
		return err
	}
	if len(rows) == 1 {
		// Keep PostgreSQL's own words: they are the dead letter's reason.
		pgErr, _ := errors.AsType[*pgconn.PgError](err)
		w.reject(rows[0], pgErr)
		return nil
	}
	mid := len(rows) / 2
	if err := w.bisect(ctx, tx, rows[:mid]); err != nil {
		return err
	}
	return w.bisect(ctx, tx, rows[mid:])
}

// store brings rows into orders. In fast mode that is one COPY; in probe
// mode the rows stored already are sorted into duplicates and conflicts
// first, and the others copied. In careful mode the staging table is
// emptied (earlier attempts of the transaction may have filled it), the rows
// go through it, and those ON CONFLICT leaves out are sorted.
func (w *batchWrite) store(ctx context.Context, tx pgx.Tx, rows []int, m mode) error {
	if m == probe {
		var err error
		if rows, err = w.probe(ctx, tx, rows); err != nil {
			return err
		}
		if w.afterProbe != nil {
			w.afterProbe()
		}
	}
	if m == fast || m == probe {
		if len(rows) == 0 {
			return nil
		}
		if err := w.copyRows(ctx, tx, copyOrders, rows); err != nil {
			return fmt.Errorf("copy orders: %w", err)
		}
		return nil
	}
	if _, err := tx.Exec(ctx, clearStaging); err != nil {
		return fmt.Errorf("clear staging: %w", err)
	}
	if err := w.copyRows(ctx, tx, copyStaging, rows); err != nil {
		return fmt.Errorf("stage orders: %w", err)
	}
	existing, err := queryStrings(ctx, tx, insertStaged)
	if err != nil {
		return fmt.Errorf("insert orders: %w", err)
	}
	w.existing += len(existing)
	if len(existing) == 0 {
		return nil
	}
	same, err := readCompared(tx.Query(ctx, compareStaged, existing))
	if err != nil {
		return err
	}
	for _, id := range existing {
		eq, found := same[id]
		if !found {
			// Not inserted because of a conflicting row, yet that row is gone:
			// only a concurrent delete can do this, and then retrying works.
			return fmt.Errorf("compare orders: order %s was neither inserted nor found", id)
		}
		i := w.first[id]
		w.fates[i] = conflict
		if eq {
			w.fates[i] = duplicate
		}
	}
	return nil
}

// probe settles the rows that are stored already as duplicates or
// conflicts, and returns the others. It asks for the ids first, and sends
// the content of the stored ones only: most of a batch is usually new, and
// the arrays cost memory on both sides.
func (w *batchWrite) probe(ctx context.Context, tx pgx.Tx, rows []int) ([]int, error) {
	ids := make([]string, len(rows))
	for k, i := range rows {
		ids[k] = w.b.Rows[i].Order.OrderID
	}
	stored, err := queryStrings(ctx, tx, probeOrders, ids)
	if err != nil {
		return nil, fmt.Errorf("probe orders: %w", err)
	}
	if len(stored) == 0 {
		return rows, nil
	}
	w.existing += len(stored)
	if err := w.compare(ctx, tx, stored); err != nil {
		return nil, err
	}
	fresh := rows[:0:0]
	for _, i := range rows {
		if w.fates[i] == inserted {
			fresh = append(fresh, i)
		}
	}
	return fresh, nil
}

// compare sorts the stored orders with these ids into duplicates and
// conflicts.
func (w *batchWrite) compare(ctx context.Context, tx pgx.Tx, stored []string) error {
	n := len(stored)
	customers, statuses := make([]string, n), make([]string, n)
	items, cents, created := make([][]byte, n), make([]int64, n), make([]time.Time, n)
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := (*bp)[:0]
	for k, id := range stored {
		o := &w.b.Rows[w.first[id]].Order
		at := len(buf)
		buf = o.AppendItemsJSON(buf)
		items[k] = buf[at:len(buf):len(buf)]
		customers[k], statuses[k], cents[k], created[k] = o.CustomerID, string(o.Status), int64(o.TotalAmount), o.CreatedAt
	}
	// The slices of items point into buf as it was when each was cut; if
	// buf grew since, they still hold their bytes (append copies).
	*bp = buf
	same, err := readCompared(tx.Query(ctx, compareOrders, stored, customers, items, cents, statuses, created))
	if err != nil {
		return err
	}
	for id, eq := range same {
		i := w.first[id]
		w.fates[i] = conflict
		if eq {
			w.fates[i] = duplicate
		}
	}
	return nil
}

// readCompared reads what a comparing query returns: per stored order_id,
// whether the batch brings the same content.
func readCompared(rows pgx.Rows, err error) (map[string]bool, error) {
	if err != nil {
		return nil, fmt.Errorf("compare orders: %w", err)
	}
	same := map[string]bool{}
	var id string
	var eq bool
	if _, err := pgx.ForEachRow(rows, []any{&id, &eq}, func() error { same[id] = eq; return nil }); err != nil {
		return nil, fmt.Errorf("compare orders: %w", err)
	}
	return same, nil
}

// queryStrings runs a query returning one text column.
func queryStrings(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	return out, nil
}
