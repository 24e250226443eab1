// Package dbtest gives each integration test a database of its own on the
// real PostgreSQL: created at the start of the test and dropped when it
// ends, so tests run in parallel, across packages too, without seeing each
// other's rows.
//
// New gives an empty database, for tests of the migrations themselves.
// NewMigrated and NewStore give a migrated one, copied (CREATE DATABASE ...
// TEMPLATE) from a template database that holds the migrations this binary
// embeds: a copy takes a fraction of the time running the migrations does.
// The template is named by a hash of the migration files, so a changed
// migration gets a template of its own and no test ever sees a stale schema.
// It is built once on a server, by whichever test process needs it first,
// under an advisory lock that the others wait on; it is migrated under a
// building name and renamed only when complete, so a process that dies
// half-way leaves nothing that others trust (the next builder drops its
// remains). Nothing connects to a finished template (it allows no
// connections), because a copy fails while anyone is connected to its
// source.
//
// Templates of other migration sets are kept: another branch or worktree may
// be running its tests against the same server, and dropping its template
// under it would fail its copies. Each is a few megabytes; remove them with
//
//	psql -Atc "SELECT format('DROP DATABASE %I;', datname) FROM pg_database WHERE datname LIKE 'foodpipe_template_%'" | psql
//
// Tests fail rather than skip when PostgreSQL is down: a skipped integration
// test reads as a pass in CI output and hides a broken setup.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"foodpipe/internal/store"
	"foodpipe/migrations"
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
	return create(t, false)
}

// NewMigrated is New with the migrations applied: the database is a copy of
// the template (see the package doc).
func NewMigrated(t testing.TB) string {
	t.Helper()
	return create(t, true)
}

// NewStore returns a store on a fresh database from NewMigrated, closed when
// the test ends.
func NewStore(t testing.TB) *store.Store {
	t.Helper()
	dbURL := NewMigrated(t)
	if dbURL == "" {
		return nil // NewMigrated has failed the test already
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
		return nil
	}
	// Registered after the database's drop, so it runs before it: the pool
	// is closed before its database goes.
	t.Cleanup(st.Close)
	return st
}

// create makes the test's database, empty or copied from the migrated
// template, and returns its URL, or "" when it has failed the test.
func create(t testing.TB, migrated bool) string {
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

	wait := 30 * time.Second
	if migrated {
		wait += templateWait
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
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

	// PostgreSQL itself waits up to five seconds for sessions connected to
	// the source (template1 by default) to leave.
	name := "foodpipe_test_" + randomHex(8)
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if migrated {
		tmpl := templateName(migrations.FS)
		if err := template(ctx, conn, *u, tmpl); err != nil {
			t.Fatalf("dbtest: %v", err)
			return ""
		}
		sql += " TEMPLATE " + pgx.Identifier{tmpl}.Sanitize()
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("dbtest: create database %s: %v", name, err)
		return ""
	}
	t.Cleanup(func() { drop(t, admin, name) })

	u.Path = "/" + name
	return u.String()
}

// templateName names the template for a set of migrations by a hash of
// their files' names and contents.
func templateName(fsys fs.FS) string {
	h := sha256.New()
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, path)
		fmt.Fprintf(h, "%s %d\n%s", path, len(b), b)
		return err
	})
	if err != nil {
		panic(err) // the migrations are embedded in the binary: reading them cannot fail
	}
	return fmt.Sprintf("foodpipe_template_%x", h.Sum(nil)[:8])
}

// templateLock is the advisory lock key that template builders take on the
// admin database: "foodpipe" in ASCII.
const templateLock = 0x666f6f6470697065

// templateWait is the time NewStore allows for waiting for or building the
// template: the migrations take about a second on a quiet machine, several
// on a busy one.
const templateWait = 2 * time.Minute

// template makes sure that the template database called name exists,
// building it with the embedded migrations if it does not. conn is a
// session on the admin database.
func template(ctx context.Context, conn *pgx.Conn, admin url.URL, name string) error {
	if ok, err := exists(ctx, conn, name); ok || err != nil {
		return err
	}

	// A session lock, which the server releases if this process dies.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLock); err != nil {
		return fmt.Errorf("lock template %s: %w", name, err)
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", templateLock) }()
	if ok, err := exists(ctx, conn, name); ok || err != nil {
		return err // built by another process while this one waited
	}

	building := name + "_building"
	if err := execAll(ctx, conn,
		"DROP DATABASE IF EXISTS "+pgx.Identifier{building}.Sanitize()+" WITH (FORCE)", // a dead builder's
		"CREATE DATABASE "+pgx.Identifier{building}.Sanitize(),
	); err != nil {
		return fmt.Errorf("build template %s: %w", name, err)
	}
	admin.Path = "/" + building
	if err := migrate(ctx, admin.String()); err != nil {
		return fmt.Errorf("build template %s: %w", name, err)
	}
	// migrate has closed its connections, and nobody may open one again:
	// a copy fails while its source has a session. The rename comes last,
	// so a template under its own name is always a complete one.
	if err := execAll(ctx, conn,
		"ALTER DATABASE "+pgx.Identifier{building}.Sanitize()+" WITH ALLOW_CONNECTIONS false",
		"ALTER DATABASE "+pgx.Identifier{building}.Sanitize()+" RENAME TO "+pgx.Identifier{name}.Sanitize(),
	); err != nil {
		return fmt.Errorf("build template %s: %w", name, err)
	}
	return nil
}

// execAll runs the statements in turn and stops at the first that fails.
func execAll(ctx context.Context, conn *pgx.Conn, sqls ...string) error {
	for _, sql := range sqls {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return err
		}
	}
	return nil
}

// migrate applies the migrations to the database at dbURL and closes every
// connection it opened.
func migrate(ctx context.Context, dbURL string) error {
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.MigrateUp(ctx)
}

func exists(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look for template %s: %w", name, err)
	}
	return ok, nil
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
