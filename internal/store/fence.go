package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A writer that freezes in the middle of a statement (a COPY whose client
// was stopped, a VM paused) is not idle, so idle_in_transaction_session_timeout
// does not end it; and PostgreSQL does not act on statement_timeout while it
// waits for the client's next bytes. Its transaction would keep the
// partition's offsets row locked, holding up the partition's new owner, and
// even DROP DATABASE anywhere in the cluster, for as long as it is frozen.
//
// So a writer that has waited fenceWait for a partition's offsets row ends
// the sessions it waits for, when their transaction has been open longer
// than fenceWait: only a writer that lost its partition holds that row so
// long (a healthy batch commits in milliseconds, and a partition moves only
// between batches). Its transaction rolls back, and when it wakes its retry
// meets the offset fence.
const fenceWait = 5 * time.Second

// terminateBlockers ends the sessions that backend $1 waits for and whose
// transaction is older than $2 seconds. It can end only sessions of the same
// role (or any, for a superuser): other foodpipe writers.
const terminateBlockers = `SELECT count(pg_terminate_backend(a.pid))::int FROM pg_stat_activity a
WHERE a.pid = ANY(pg_blocking_pids($1)) AND a.datname = current_database()
	AND a.xact_start < now() - make_interval(secs => $2)`

// unblock ends, every fenceWait until stop is called, the sessions that
// the backend pid waits for and that fit terminateBlockers. It uses a
// connection of its own: the pool may be all in use by writers waiting the
// same way. It is a timer, not a goroutine, until it first fires: nearly
// every batch stops it long before.
func (s *Store) unblock(ctx context.Context, pid uint32) (stop func()) {
	var (
		mu      sync.Mutex
		stopped bool
		running sync.WaitGroup
		t       *time.Timer
	)
	fire := func() {
		mu.Lock()
		if stopped || ctx.Err() != nil {
			mu.Unlock()
			return
		}
		running.Add(1)
		mu.Unlock()
		defer running.Done()
		s.terminateBlockers(ctx, pid)
		mu.Lock()
		if !stopped {
			t.Reset(fenceWait)
		}
		mu.Unlock()
	}
	mu.Lock()
	t = time.AfterFunc(fenceWait, fire)
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
		running.Wait()
	}
}

// terminateBlockers runs terminateBlockers for the backend pid on a
// connection of its own, and counts the sessions it ended.
func (s *Store) terminateBlockers(ctx context.Context, pid uint32) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fenceWait)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return // the next tick tries again; the statement limits still hold
	}
	defer conn.Close(context.WithoutCancel(cctx)) //nolint:errcheck // a session of its own, ended either way
	var n int
	if conn.QueryRow(cctx, terminateBlockers, pid, fenceWait.Seconds()).Scan(&n) == nil && n > 0 {
		s.terminated.Add(int64(n))
	}
}

// Terminated is how many sessions of frozen writers this store has ended
// (see fenceWait).
func (s *Store) Terminated() int64 { return s.terminated.Load() }

// batchLimits sets the limits of a batch's transaction, which PostgreSQL
// itself enforces, so that a writer that freezes (SIGSTOP, a VM paused, a GC
// or swap storm, a network that stops answering) cannot hold the locks of
// its consumer_offsets rows, and with them every other member of the group,
// for longer than this:
//   - idle in the transaction for 5 s: PostgreSQL ends the session; the
//     frozen writer's COMMIT, when it wakes, fails, and its retry meets the
//     offset fence;
//   - one statement for 15 s (a COPY whose client stopped sending): the
//     statement is cancelled and the transaction rolls back;
//   - waiting for a lock for 15 s: the waiter gets a transient error and
//     retries.
//
// A batch's statements take milliseconds and nothing waits between them, so
// healthy writers never come near these limits. set_config(..., true) is
// SET LOCAL as a query: it lasts for the transaction only, and it travels in
// the transaction's first round trip with the BEGIN and the fence (see
// begin), where a multi-statement BEGIN would cost a round trip of its own.
const batchLimits = `SELECT set_config('idle_in_transaction_session_timeout', '5s', true),
	set_config('statement_timeout', '15s', true), set_config('lock_timeout', '15s', true)`

// fenceOffsets stores the next offset of every partition of the batch, but
// only where the stored one does not lie beyond the batch's first offset,
// and fails (SQLSTATE staleOffsetsCode) when any partition was stored past:
// the function fence_offsets (migrations/00008_create_fence_offsets.sql). It
// runs first in the transaction: the rows it writes stay locked until
// commit, so a second consumer holding the same partitions waits here and
// then finds itself fenced, before doing any work. Because it fails its
// statement, PostgreSQL skips what the pipeline holds after it, a COMMIT
// included (see begin).
const fenceOffsets = `SELECT fence_offsets($1, $2, $3, $4, $5)`

// staleOffsetsCode is the SQLSTATE fence_offsets raises when it refuses.
const staleOffsetsCode = "FP001"

// begin opens a batch's transaction on a connection of its own and, in the
// same round trip (one pipeline: the statements are sent together and
// PostgreSQL runs them in order), sets its limits, runs the offset fence,
// and runs what queue adds to the pipeline (nil adds nothing; label names
// those statements in an error). A batch used to spend a round trip on each:
// the BEGIN, then the fence, then its rows; each is a write, a wait and a
// wake-up for this process, whatever the batch's size.
//
// When the fence finds a partition stored past the batch, it fails its
// statement and PostgreSQL skips the rest of the pipeline: begin rolls the
// transaction back and fails with ErrStaleOffsets. With commit set, the
// pipeline ends with the COMMIT: a batch that needs nothing after its rows
// is then stored in one round trip, and the transaction begin returns is
// committed already. Otherwise it returns the open transaction. Either way
// it returns the function that ends it (a rollback, a no-op once committed)
// and hands its connection back: call it once done, committed or not.
func (s *Store) begin(ctx context.Context, w *batchWrite, queue func(*pgx.Batch) (label string), commit bool) (pgx.Tx, func(), error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("begin: %w", err)
	}
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	var began, limited, fenced bool
	b.QueuedQueries[0].Exec(func(pgconn.CommandTag) error { began = true; return nil })
	b.Queue(batchLimits).Exec(func(pgconn.CommandTag) error { limited = true; return nil })
	n, stored := len(w.b.Offsets), 0
	var topics []string
	var parts []int32
	if n > 0 {
		froms, nexts := make([]int64, n), make([]int64, n)
		topics, parts = make([]string, n), make([]int32, n)
		for i, po := range w.b.Offsets {
			topics[i], parts[i], froms[i], nexts[i] = po.Topic, po.Partition, po.From, po.Next
		}
		b.Queue(fenceOffsets, w.b.Group, topics, parts, froms, nexts).QueryRow(func(r pgx.Row) error {
			if err := r.Scan(&stored); err != nil {
				return err
			}
			fenced = true
			return nil
		})
	}
	label := ""
	if queue != nil {
		label = queue(b)
	}
	committed := false
	if commit {
		b.Queue("COMMIT").Exec(func(pgconn.CommandTag) error { committed = true; return nil })
	}
	stop := s.unblock(ctx, conn.Conn().PgConn().PID())
	br := conn.SendBatch(ctx, b)
	tx := br.Tx()
	err = br.Close()
	stop()
	end := func() {
		tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit; on failure the error that matters is already returned
		conn.Release()
	}
	if fenced && stored != n || isStaleOffsets(err) {
		end()
		// The rollback has released the rows; the newer offsets are
		// committed, and read outside the transaction.
		return nil, nil, w.stale(ctx, s.pool, topics, parts)
	}
	if err != nil {
		end()
		switch {
		case !began:
			return nil, nil, fmt.Errorf("begin: %w", err)
		case !limited:
			return nil, nil, fmt.Errorf("set the transaction's limits: %w", err)
		case n > 0 && !fenced:
			return nil, nil, fmt.Errorf("store offsets: %w", err)
		case commit:
			label = strings.TrimPrefix(label+" or commit", " or ")
		}
		return nil, nil, fmt.Errorf("%s: %w", label, err)
	}
	if committed {
		return tx, end, nil
	}
	if err := w.recordExpired(ctx, tx); err != nil {
		end()
		return nil, nil, err
	}
	return tx, end, nil
}

// isStaleOffsets reports whether err is the fence's refusal (fence_offsets).
func isStaleOffsets(err error) bool {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pgErr.Code == staleOffsetsCode
}

// stale names the partitions that another member stored past, for the log
// of whoever gets fenced: an error wrapping ErrStaleOffsets.
func (w *batchWrite) stale(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, topics []string, parts []int32) error {
	rows, err := q.Query(ctx, `SELECT topic, kafka_partition, next_offset FROM consumer_offsets
		WHERE group_id = $1 AND (topic, kafka_partition) IN (SELECT * FROM unnest($2::text[], $3::int[]))`,
		w.b.Group, topics, parts)
	if err != nil {
		return fmt.Errorf("%w: group %s", ErrStaleOffsets, w.b.Group)
	}
	next := map[PartitionOffset]int64{}
	for rows.Next() {
		var po PartitionOffset
		var off int64
		if rows.Scan(&po.Topic, &po.Partition, &off) == nil {
			next[po] = off
		}
	}
	rows.Close()
	for _, po := range w.b.Offsets {
		if off, ok := next[PartitionOffset{Topic: po.Topic, Partition: po.Partition}]; ok && off > po.From {
			return fmt.Errorf("%w: group %s, %s/%d stored up to offset %d, batch starts at %d",
				ErrStaleOffsets, w.b.Group, po.Topic, po.Partition, off, po.From)
		}
	}
	return fmt.Errorf("%w: group %s", ErrStaleOffsets, w.b.Group)
}

// recordExpired records the batch's expired ranges; a range recorded before
// (by a member that was stopped before its batch was committed to Kafka) is
// left as it is.
func (w *batchWrite) recordExpired(ctx context.Context, tx pgx.Tx) error {
	n := len(w.b.Expired)
	if n == 0 {
		return nil
	}
	topics := make([]string, n)
	parts := make([]int32, n)
	froms := make([]int64, n)
	tos := make([]int64, n)
	for i, r := range w.b.Expired {
		topics[i], parts[i], froms[i], tos[i] = r.Topic, r.Partition, r.From, r.To
	}
	if _, err := tx.Exec(ctx, `INSERT INTO expired_offsets (group_id, topic, kafka_partition, from_offset, to_offset)
		SELECT $1, * FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[])
		ON CONFLICT DO NOTHING`, w.b.Group, topics, parts, froms, tos); err != nil {
		return fmt.Errorf("record expired offsets: %w", err)
	}
	return nil
}
