package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
		{"a read-only transaction (25006: a standby, a failover) is transient", pg("25006"), true},
		{"a database dropped (57P04) is permanent", pg("57P04"), false},
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

// setReadOnly makes the database at dbURL refuse writes (on) or take them
// again (off) for new sessions, and ends its sessions, from a session on the
// admin database: a failover to a standby and back, as a client sees it.
func setReadOnly(t *testing.T, dbURL string, on bool) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()
	admin := os.Getenv(dbtest.EnvAdminURL)
	if admin == "" {
		admin = dbtest.DefaultAdminURL
	}
	ctx := ctxFor(t)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	stmt := "ALTER DATABASE " + name + " RESET default_transaction_read_only"
	if on {
		stmt = "ALTER DATABASE " + name + " SET default_transaction_read_only = on"
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
		strings.TrimPrefix(u.Path, "/")); err != nil {
		t.Fatal(err)
	}
}

// A database that refuses writes, as during a failover, fails a batch with
// an error worth retrying, and Writable says why; once it takes writes
// again, the next batch goes through, with no new store.
func TestAReadOnlyDatabaseIsWaitedOut(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	dbURL := dbtest.NewMigrated(t)
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if err := st.Writable(ctx); err != nil {
		t.Fatalf("Writable of a primary: %v", err)
	}

	setReadOnly(t, dbURL, true)
	for name, w := range map[string]interface {
		WriteBatch(context.Context, store.Batch) (store.Result, error)
	}{"orders": st, "analytics": st.Analytics()} {
		_, err := w.WriteBatch(ctx, store.Batch{Group: name, Rows: rows(0, "A"), Offsets: offsets(0, 1)})
		if err == nil || !store.IsTransient(err) || store.IsSchema(err) {
			t.Errorf("%s: WriteBatch on a read-only database: %v; want an error IsTransient and not IsSchema", name, err)
		}
	}
	_, err = st.PublishDeadLetters(ctx, "orders", 10, func(context.Context, []store.DeadLetter) []error { return nil })
	if !store.IsTransient(err) {
		t.Errorf("PublishDeadLetters on a read-only database: %v; want an error IsTransient", err)
	}
	if err := st.Writable(ctx); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("Writable of a read-only database = %v, want ErrReadOnly", err)
	}

	setReadOnly(t, dbURL, false)
	if err := st.Writable(ctx); err != nil {
		t.Fatalf("Writable once the database takes writes again: %v", err)
	}
	for name, w := range map[string]interface {
		WriteBatch(context.Context, store.Batch) (store.Result, error)
	}{"orders": st, "analytics": st.Analytics()} {
		if res, err := w.WriteBatch(ctx, store.Batch{Group: name, Rows: rows(0, "A"), Offsets: offsets(0, 1)}); err != nil || res.Inserted != 1 {
			t.Errorf("%s: WriteBatch once writable again = %+v, %v; want the row inserted", name, res, err)
		}
	}
}

// A pooled connection that has become read-only (its server turned into a
// standby, or its session's transactions were made read-only) is not kept:
// the write that meets it resets the pool, and the next write, on a new
// connection, goes through. The pool here has one connection, so without
// the reset every write would meet the same session.
func TestAWriteThatMeetsAReadOnlySessionResetsThePool(t *testing.T) {
	t.Parallel()
	ctx := ctxFor(t)
	dbURL := dbtest.NewMigrated(t)
	st, err := store.Open(ctx, dbURL, store.MaxConns(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	readOnly := func() {
		t.Helper()
		if _, err := st.Pool().Exec(ctx, "SET default_transaction_read_only = on"); err != nil {
			t.Fatal(err)
		}
	}

	readOnly()
	_, err = st.WriteBatch(ctx, store.Batch{Group: "g", Rows: rows(0, "A"), Offsets: offsets(0, 1)})
	if !store.IsTransient(err) {
		t.Fatalf("WriteBatch on a read-only session: %v; want an error IsTransient", err)
	}
	if _, err := st.WriteBatch(ctx, store.Batch{Group: "g", Rows: rows(0, "A"), Offsets: offsets(0, 1)}); err != nil {
		t.Errorf("the write after: %v; want it on a new connection, stored", err)
	}

	readOnly()
	if err := st.Writable(ctx); !errors.Is(err, store.ErrReadOnly) {
		t.Errorf("Writable on a read-only session = %v, want ErrReadOnly", err)
	}
	if err := st.Writable(ctx); err != nil {
		t.Errorf("Writable after: %v; want nil, on a new connection", err)
	}
}
