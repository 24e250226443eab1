package store

import (
	"context"
	"errors"
	"fmt"

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

// store brings rows into orders. In fast mode that is one COPY. Otherwise
// the rows go through the staging table, and those already stored are
// sorted into duplicates and conflicts; in careful mode the staging table is
// emptied first, as earlier attempts of the transaction may have filled it.
func (w *batchWrite) store(ctx context.Context, tx pgx.Tx, rows []int, m mode) error {
	if m == fast {
		if err := w.copyRows(ctx, tx, copyOrders, rows); err != nil {
			return fmt.Errorf("copy orders: %w", err)
		}
		return nil
	}
	if m == careful {
		if _, err := tx.Exec(ctx, clearStaging); err != nil {
			return fmt.Errorf("clear staging: %w", err)
		}
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
	same := make(map[string]bool, len(existing))
	cmp, err := tx.Query(ctx, compareStaged, existing)
	if err != nil {
		return fmt.Errorf("compare orders: %w", err)
	}
	for cmp.Next() {
		var id string
		var eq bool
		if err := cmp.Scan(&id, &eq); err != nil {
			cmp.Close()
			return fmt.Errorf("compare orders: %w", err)
		}
		same[id] = eq
	}
	if err := cmp.Err(); err != nil {
		return fmt.Errorf("compare orders: %w", err)
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
