// Package dbtest gives each integration test a database of its own on the
// real PostgreSQL: created empty at the start of the test and dropped when it
// ends, so tests run in parallel, across packages too, without seeing each
// other's rows.
//
// Tests fail rather than skip when PostgreSQL is down: a skipped integration
// test reads as a pass in CI output and hides a broken setup.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"foodpipe/internal/store"
)

// EnvAdminURL names the environment variable holding the URL of a database
// on the test server that dbtest connects to to create and drop databases.
const EnvAdminURL = "FOODPIPE_TEST_DATABASE_URL"

// DefaultAdminURL is used when EnvAdminURL is unset: the local server, with
// trust authentication, as the project's development machine runs it.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// New creates a fresh, empty database for one test and drops it (WITH
// (FORCE), so connections left open do not block it) when the test ends. It
// returns the database's URL. If PostgreSQL cannot be reached the test fails
// with a message saying how to start it.
func New(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvAdminURL)
	if admin == "" {
		admin = DefaultAdminURL
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("dbtest: %s must be a postgres:// URL", EnvAdminURL)
		return ""
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("dbtest: cannot reach PostgreSQL at %s: %v\n"+
			"Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"+
			"or point %s at a server where this user may create databases.",
			u.Redacted(), err, EnvAdminURL)
		return ""
	}
	defer conn.Close(context.WithoutCancel(ctx))

	name := "foodpipe_test_" + randomHex(8)
	// PostgreSQL itself waits up to five seconds for sessions connected to
	// template1 (which CREATE DATABASE copies) to leave.
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("dbtest: create database %s: %v", name, err)
		return ""
	}
	t.Cleanup(func() { drop(t, admin, name) })

	u.Path = "/" + name
	return u.String()
}

// NewStore returns a store on a fresh database (see New) with the
// migrations applied, closed when the test ends.
func NewStore(t testing.TB) *store.Store {
	t.Helper()
	dbURL := New(t)
	if dbURL == "" {
		return nil // New has failed the test already
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
		return nil
	}
	// Registered after New's drop, so it runs before it: the pool is closed
	// before its database goes.
	t.Cleanup(st.Close)
	if err := st.MigrateUp(ctx); err != nil {
		t.Fatalf("dbtest: %v", err)
		return nil
	}
	return st
}

// dropWait bounds dropping a test's database. DROP DATABASE waits on the
// whole server (every session in the cluster takes note of the drop), which
// on a machine whose cores and disk other tests keep busy (an image build)
// has been seen to take more than 30 s.
const dropWait = 2 * time.Minute

func drop(t testing.TB, admin, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), dropWait)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Errorf("dbtest: drop database %s: %v", name, err)
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		t.Errorf("dbtest: drop database %s: %v", name, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails: crypto/rand crashes the program instead
	return hex.EncodeToString(b)
}
