package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"foodpipe/internal/store"
	"foodpipe/internal/store/dbtest"
)

func TestIsTransient(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return fmt.Errorf("insert: %w", &pgconn.PgError{Code: code}) }

	// A real failure to connect: nothing listens on port 1.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, refused := store.Open(ctx, "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=5")
	if refused == nil {
		t.Fatal("Open of a closed port succeeded")
	}

	// A server that answers, but has no such database: retrying won't help.
	_, noDB := store.Open(ctx, strings.Replace(dbtest.New(t), "foodpipe_test_", "foodpipe_missing_", 1))
	if noDB == nil {
		t.Fatal("Open of a missing database succeeded")
	}

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"a refused connection is transient", refused, true},
		{"a database that does not exist is permanent", noDB, false},
		{"a connection exception (08006) is transient", pg("08006"), true},
		{"a connection that does not exist (08003) is transient", pg("08003"), true},
		{"a serialization failure (40001) is transient", pg("40001"), true},
		{"a deadlock (40P01) is transient", pg("40P01"), true},
		{"an admin shutdown (57P01) is transient", pg("57P01"), true},
		{"a crash shutdown (57P02) is transient", pg("57P02"), true},
		{"a server starting up (57P03) is transient", pg("57P03"), true},
		{"too many connections (53300) is transient", pg("53300"), true},
		{"a full disk (53100) is transient", pg("53100"), true},
		{"a lock timeout (55P03) is transient", pg("55P03"), true},
		{"a statement timeout (57014) is transient", pg("57014"), true},
		{"a unique violation (23505) is permanent", pg("23505"), false},
		{"a not-null violation (23502) is permanent", pg("23502"), false},
		{"a value too long (22001) is permanent", pg("22001"), false},
		{"an untranslatable character (22P05) is permanent", pg("22P05"), false},
		{"a syntax error (42601) is permanent", pg("42601"), false},
		{"an undefined table (42P01) is permanent", pg("42P01"), false},
		{"stale offsets are permanent", fmt.Errorf("write batch: %w", store.ErrStaleOffsets), false},
		{"a rejected row is permanent", fmt.Errorf("%w: %w", store.ErrRejected, pg("22P05")), false},
		{"an invalid batch is permanent", store.ErrInvalidBatch, false},
		{"a canceled context is permanent", fmt.Errorf("begin: %w", context.Canceled), false},
		{"a deadline is a timeout and transient", fmt.Errorf("begin: %w", context.DeadlineExceeded), true},
		{"a reset connection is transient", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, true},
		{"an unexpected EOF is transient", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"a bare ECONNREFUSED is transient", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"an unknown error is permanent", errors.New("something else"), false},
		{"no error is not transient", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := store.IsTransient(tt.err); got != tt.want {
				t.Errorf("IsTransient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestIsTransientForAServerThatGoesAway(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	st := dbtest.NewStore(t)
	// Use the pool once, so that its idle connection (fresh, thus not pinged
	// before reuse) is the one that gets terminated.
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// Terminate every connection of the pool from another session, as a
	// server restart or failover would.
	other, err := store.Open(ctx, st.Pool().Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Pool().Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	_, err = st.WriteBatch(ctx, store.Batch{Group: "g", Rows: rows(0, "A"), Offsets: offsets(0, 1)})
	if !store.IsTransient(err) {
		t.Errorf("IsTransient(%v) = false, want true", err)
	}
}
