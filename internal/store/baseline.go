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

// Reset empties the tables (Store.Empty) for a measurement that must start
// from empty tables, and asks for a checkpoint so that the writes of the
// measurement before do not slow down the next one. (Only a superuser or a
// member of pg_checkpoint may; for others it is skipped.)
func (b Bench) Reset(ctx context.Context) error {
	if err := b.s.Empty(ctx); err != nil {
		return err
	}
	return b.checkpoint(ctx)
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

// Prefill empties the tables and loads n orders made up in PostgreSQL (ids
// PRE-1 ... PRE-n, a hundred customers, a minute's spread of created_at),
// then analyzes the table: a table with months of orders behind it, for
// measuring how a drain fares against a full table. Their Kafka offsets are
// negative, which no message has, so that ResetPrefilled can tell them apart.
func (b Bench) Prefill(ctx context.Context, n int) error {
	if err := b.Reset(ctx); err != nil {
		return err
	}
	if _, err := b.s.pool.Exec(ctx, `INSERT INTO orders (order_id, customer_id, items, total_amount, status, created_at, kafka_partition, kafka_offset)
		SELECT 'PRE-' || i, 'CUST-' || (10001 + i % 100), '[{"name":"Burger","quantity":1,"price":8.99}]', 8.99, 'delivered',
			now() - make_interval(secs => i % 60), (i % 3)::int, -i
		FROM generate_series(1, $1::bigint) AS i`, n); err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	if _, err := b.s.pool.Exec(ctx, "VACUUM ANALYZE orders"); err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	return b.checkpoint(ctx)
}

// ResetPrefilled removes what came after Prefill (the rows of real
// messages, the offsets, the dead letters) and vacuums, so that each round
// meets the same full table.
func (b Bench) ResetPrefilled(ctx context.Context) error {
	if _, err := b.s.pool.Exec(ctx, "DELETE FROM orders WHERE kafka_offset >= 0"); err != nil {
		return fmt.Errorf("reset to the prefill: %w", err)
	}
	if _, err := b.s.pool.Exec(ctx, "TRUNCATE consumer_offsets, dead_letters"); err != nil {
		return fmt.Errorf("reset to the prefill: %w", err)
	}
	if _, err := b.s.pool.Exec(ctx, "VACUUM orders"); err != nil {
		return fmt.Errorf("reset to the prefill: %w", err)
	}
	return b.checkpoint(ctx)
}

func (b Bench) checkpoint(ctx context.Context) error {
	if _, err := b.s.pool.Exec(ctx, "CHECKPOINT"); err != nil && !isInsufficientPrivilege(err) {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// DBActivity is what PostgreSQL did between two Activity readings: WAL
// written, buffers written by checkpoints and by backends themselves, and
// how many of the orders table's (heap and index) block reads were found in
// shared_buffers.
type DBActivity struct {
	WALBytes          int64   `json:"wal_bytes"`
	CheckpointBuffers int64   `json:"checkpoint_buffers"`
	BackendBuffers    int64   `json:"backend_buffers"`
	BlocksRead        int64   `json:"blocks_read"`
	BlocksHit         int64   `json:"blocks_hit"`
	HitRatio          float64 `json:"hit_ratio"`
}

// Activity reads the counters of pg_stat_wal, pg_stat_bgwriter and
// pg_statio_user_tables (orders) now; Since gives the difference.
func (b Bench) Activity(ctx context.Context) (DBActivity, error) {
	var a DBActivity
	err := b.s.pool.QueryRow(ctx, `SELECT
		(SELECT wal_bytes::bigint FROM pg_stat_wal),
		(SELECT buffers_checkpoint FROM pg_stat_bgwriter),
		(SELECT buffers_backend FROM pg_stat_bgwriter),
		(SELECT coalesce(heap_blks_read, 0) + coalesce(idx_blks_read, 0) FROM pg_statio_user_tables WHERE relname = 'orders'),
		(SELECT coalesce(heap_blks_hit, 0) + coalesce(idx_blks_hit, 0) FROM pg_statio_user_tables WHERE relname = 'orders')`).
		Scan(&a.WALBytes, &a.CheckpointBuffers, &a.BackendBuffers, &a.BlocksRead, &a.BlocksHit)
	if err != nil {
		return a, fmt.Errorf("database activity: %w", err)
	}
	return a, nil
}

// SettledActivity reads Activity until two readings 250 ms apart agree
// (for up to 3 s): backends report their counters when they end or idle,
// so right after a drain the last of them may not be in yet.
func (b Bench) SettledActivity(ctx context.Context) (DBActivity, error) {
	a, err := b.Activity(ctx)
	for end := time.Now().Add(3 * time.Second); err == nil && time.Now().Before(end); {
		time.Sleep(250 * time.Millisecond)
		var next DBActivity
		if next, err = b.Activity(ctx); err == nil && next == a {
			break
		}
		a = next
	}
	return a, err
}

// Since is what happened from before to a.
func (a DBActivity) Since(before DBActivity) DBActivity {
	d := DBActivity{WALBytes: a.WALBytes - before.WALBytes, CheckpointBuffers: a.CheckpointBuffers - before.CheckpointBuffers,
		BackendBuffers: a.BackendBuffers - before.BackendBuffers, BlocksRead: a.BlocksRead - before.BlocksRead, BlocksHit: a.BlocksHit - before.BlocksHit}
	if n := d.BlocksRead + d.BlocksHit; n > 0 {
		d.HitRatio = float64(d.BlocksHit) / float64(n)
	}
	return d
}

// StoredBefore counts the orders of status stored before t: the rows a
// re-delivery bench stored ahead of the drain, which the drain must leave
// as they were.
func (b Bench) StoredBefore(ctx context.Context, t time.Time, status string) (int64, error) {
	var n int64
	err := b.s.pool.QueryRow(ctx, `SELECT count(*) FROM orders WHERE processed_at < $1 AND status = $2`, t, status).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count stored orders: %w", err)
	}
	return n, nil
}
