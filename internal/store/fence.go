package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
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
// same way.
func (s *Store) unblock(ctx context.Context, pid uint32) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(fenceWait)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fenceWait)
			conn, err := pgx.ConnectConfig(cctx, s.pool.Config().ConnConfig.Copy())
			if err == nil {
				var n int
				if conn.QueryRow(cctx, terminateBlockers, pid, fenceWait.Seconds()).Scan(&n) == nil && n > 0 {
					s.terminated.Add(int64(n))
				}
				_ = conn.Close(context.WithoutCancel(cctx))
			}
			cancel()
		}
	}()
	return func() { close(done); <-finished }
}

// Terminated is how many sessions of frozen writers this store has ended
// (see fenceWait).
func (s *Store) Terminated() int64 { return s.terminated.Load() }
