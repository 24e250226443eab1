package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
)

// Bench holds the operations only `foodpipe bench` needs, which empty or
// bypass the orders table: kept off Store, so that nothing in the pipeline
// can call them by mistake.
type Bench struct{ s *Store }

// Bench returns the bench-only operations on this store's database.
func (s *Store) Bench() Bench { return Bench{s} }

// CopyBaseline stores rows with one COPY and nothing else: no
// deduplication, no offsets, no transaction of its own. It is the yardstick
// `foodpipe bench` holds the consumer against, so the rows are encoded
// before the clock starts and only PostgreSQL's work is timed.
func (b Bench) CopyBaseline(ctx context.Context, rows []Row) (time.Duration, error) {
	buf := beginCopy(nil)
	for i := range rows {
		buf = appendRow(buf, &rows[i])
	}
	buf = endCopy(buf)
	conn, err := b.s.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("copy baseline: %w", err)
	}
	defer conn.Release()
	start := time.Now()
	tag, err := conn.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), copyOrders)
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("copy baseline: %w", err)
	}
	if n := tag.RowsAffected(); n != int64(len(rows)) {
		return 0, fmt.Errorf("copy baseline: %d rows stored of %d", n, len(rows))
	}
	return took, nil
}

// Reset empties the orders and the stored offsets, for a measurement that
// must start from empty tables, and asks for a checkpoint so that the
// writes of the measurement before do not slow down the next one. (Only a
// superuser or a member of pg_checkpoint may; for others it is skipped.)
func (b Bench) Reset(ctx context.Context) error {
	if _, err := b.s.pool.Exec(ctx, "TRUNCATE orders, consumer_offsets, dead_letters"); err != nil {
		return fmt.Errorf("empty the tables: %w", err)
	}
	if _, err := b.s.pool.Exec(ctx, "CHECKPOINT"); err != nil && !isInsufficientPrivilege(err) {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

func isInsufficientPrivilege(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pgErr.Code == pgerrcode.InsufficientPrivilege
}

// SetAutovacuum turns PostgreSQL's background vacuum and analyze of the
// orders table on or off. A measurement turns it off: one COPY commits once
// and never wakes it, while a drain of many transactions does, half way
// through, and the two would not be measured alike.
func (b Bench) SetAutovacuum(ctx context.Context, on bool) error {
	sql := "ALTER TABLE orders RESET (autovacuum_enabled)"
	if !on {
		sql = "ALTER TABLE orders SET (autovacuum_enabled = false)"
	}
	if _, err := b.s.pool.Exec(ctx, sql); err != nil {
		return fmt.Errorf("autovacuum: %w", err)
	}
	return nil
}
