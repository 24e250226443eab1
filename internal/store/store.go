// Package store keeps foodpipe's orders in PostgreSQL. It is the only package
// that imports pgx: it owns the connection pool, applies the embedded schema
// migrations, writes consumer batches together with the Kafka offsets they
// cover, and answers the few read queries the CLI and the demo need.
//
// Database errors are classified here, at the boundary, so callers branch on
// kinds (ErrStaleOffsets, IsTransient, Rejected rows) and never on SQLSTATEs.
package store

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"foodpipe/internal/secret"
)

// Store is a PostgreSQL connection pool with foodpipe's queries. It is safe
// for concurrent use.
type Store struct {
	pool *pgxpool.Pool

	// recentExisting is set while batches meet orders already stored, so
	// that WriteBatch goes straight to probe mode instead of failing in fast
	// mode first.
	recentExisting atomic.Bool
	// afterProbe, when set, runs between a batch's probe and its COPY; tests
	// store an order from elsewhere at that moment.
	afterProbe func()
	// terminated counts the sessions of frozen writers ended (fence.go).
	terminated atomic.Int64
}

// An Option configures Open.
type Option func(*options)

type options struct {
	maxConns int32
}

// MaxConns caps the pool at n connections (pgx's default is the greater of 4
// and the number of CPUs). Each concurrent WriteBatch holds one connection
// for its whole transaction, so n bounds write parallelism; more connections
// than PostgreSQL has cores mostly adds lock and WAL contention rather than
// throughput. Values below 1 are ignored.
func MaxConns(n int32) Option {
	return func(o *options) {
		if n > 0 {
			o.maxConns = n
		}
	}
}

// Open connects to the database at connString (a postgres:// URL or a
// key=value connection string), creates each connection's staging table, and pings the
// server so that a wrong address fails here rather than at the first batch.
// Errors name the host and database but never the password.
func Open(ctx context.Context, connString string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %s", secret.Scrub(err.Error(), connString))
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxConns > 0 {
		cfg.MaxConns = o.maxConns
	}
	// A temporary table lives as long as its connection, so it is created
	// once here instead of once per batch.
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, createStaging); err != nil {
			return fmt.Errorf("create the staging table: %w", err)
		}
		return nil
	}
	target := describe(cfg)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres %s: %s", target, secret.Scrub(err.Error(), connString))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres %s: %w", target, redactedError{err: err, text: secret.Scrub(err.Error(), connString)})
	}
	return &Store{pool: pool}, nil
}

// Close waits for borrowed connections to come back and closes them all.
func (s *Store) Close() { s.pool.Close() }

// Pool returns the underlying pool, for health checks and pool metrics.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that a connection can be acquired and the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// writableQuery tells whether the server is a standby, and whether a
// transaction on this session would be read-only (a standby's are; so are a
// primary's with default_transaction_read_only on).
const writableQuery = `SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'`

// Writable checks that the server answers and takes writes. It fails with
// an error wrapping ErrReadOnly when the server answers but refuses writes,
// and with the connection's error when it does not answer.
//
// A consumer waits for this, not for any answer, before it goes back to
// work: a read-only server answers reads, and a member that rejoined its
// group on that would fail its first batch and leave again.
func (s *Store) Writable(ctx context.Context) error {
	var recovery, readOnly bool
	err := s.pool.QueryRow(ctx, writableQuery).Scan(&recovery, &readOnly)
	switch {
	case isReadOnly(err):
		err = fmt.Errorf("%w: %w", ErrReadOnly, err)
	case err != nil:
		return fmt.Errorf("ping postgres: %w", err)
	case recovery:
		err = fmt.Errorf("%w: the server is a standby, in recovery", ErrReadOnly)
	case readOnly:
		err = fmt.Errorf("%w: transaction_read_only is on (default_transaction_read_only)", ErrReadOnly)
	default:
		return nil
	}
	s.pool.Reset()
	return err
}

// resetIfReadOnly closes the pool's connections when err says the server
// refuses writes (a server state change, in pgxpool's words). After a
// failover, pooled connections may lead to the old primary, now a standby,
// or be sessions made read-only; new ones find the writable server (with a
// multi-host DATABASE_URL and target_session_attrs=read-write, libpq's way,
// the primary among the hosts). Connections in use are closed as they come
// back.
func (s *Store) resetIfReadOnly(err error) {
	if isReadOnly(err) {
		s.pool.Reset()
	}
}

// describe names the server and database for error messages: host:port/db
// as user, nothing secret.
func describe(cfg *pgxpool.Config) string {
	cc := cfg.ConnConfig
	return fmt.Sprintf("%s:%d/%s (user %s)", cc.Host, cc.Port, cc.Database, cc.User)
}

// redactedError keeps the chain of err for errors.Is/As (IsTransient needs
// it) while printing a text without the password.
type redactedError struct {
	err  error
	text string
}

func (e redactedError) Error() string { return e.text }
func (e redactedError) Unwrap() error { return e.err }
