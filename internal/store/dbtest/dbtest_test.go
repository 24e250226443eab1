package dbtest_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"foodpipe/internal/store"
	"foodpipe/internal/store/dbtest"
	"foodpipe/migrations"
)

// adminConn connects to the server as the admin, for the rest of the test.
func adminConn(t *testing.T) (context.Context, *pgx.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	conn, err := pgx.Connect(ctx, dbtest.DefaultAdminURL)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()); cancel() })
	return ctx, conn
}

func exists(t *testing.T, name string) bool {
	t.Helper()
	ctx, conn := adminConn(t)
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestNew(t *testing.T) {
	t.Parallel()
	var name string
	t.Run("New creates an empty database of its own", func(t *testing.T) {
		url := dbtest.New(t)
		name = url[strings.LastIndex(url, "/")+1:]
		name, _, _ = strings.Cut(name, "?")
		if !strings.HasPrefix(name, "foodpipe_test_") || !exists(t, name) {
			t.Fatalf("database %q from %s does not exist", name, url)
		}
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var tables int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil || tables != 0 {
			t.Errorf("public tables = %d, %v, want 0", tables, err)
		}
		if other := dbtest.New(t); other == url {
			t.Errorf("two calls returned the same database %s", url)
		}
	})
	t.Run("the database is dropped when its test ends", func(t *testing.T) {
		if exists(t, name) {
			t.Errorf("database %s still exists", name)
		}
	})
}

func TestNewStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := dbtest.NewStore(t), dbtest.NewStore(t)

	t.Run("two stores have databases of their own", func(t *testing.T) {
		if nameOf(t, a) == nameOf(t, b) {
			t.Errorf("both stores are on %s", nameOf(t, a))
		}
	})
	t.Run("each has every migration applied and no rows", func(t *testing.T) {
		for _, st := range []*store.Store{a, b} {
			if applied := appliedAt(t, st); len(applied) != len(migrationFiles(t)) {
				t.Errorf("%s has %d migrations applied, want %d", nameOf(t, st), len(applied), len(migrationFiles(t)))
			}
			if n, err := st.Count(ctx); err != nil || n != 0 {
				t.Errorf("Count = %d, %v, want 0 from an empty orders table", n, err)
			}
		}
	})
	t.Run("the migrations ran once, in the template, not once per store", func(t *testing.T) {
		if at, bt := appliedAt(t, a), appliedAt(t, b); !slices.Equal(at, bt) {
			t.Errorf("the stores' migrations were applied at %v and at %v, want the template's times in both", at, bt)
		}
	})
	t.Run("the template takes no connections", func(t *testing.T) {
		u := strings.Replace(dbtest.DefaultAdminURL, "/postgres?", "/"+dbtest.Template()+"?", 1)
		conn, err := pgx.Connect(ctx, u)
		if err == nil {
			conn.Close(ctx)
			t.Fatalf("connected to the template %s", dbtest.Template())
		}
		if !strings.Contains(err.Error(), "not currently accepting connections") {
			t.Errorf("connect to the template: %v, want a refusal", err)
		}
	})
}

func TestTemplate(t *testing.T) {
	t.Parallel()
	t.Run("the template's name changes with any migration and fits PostgreSQL's 63 bytes", func(t *testing.T) {
		base := fstest.MapFS{"00001_a.sql": {Data: []byte("CREATE TABLE a ();")}}
		name := dbtest.TemplateName(base)
		if len(name) > 63-len("_building") || !strings.HasPrefix(name, "foodpipe_template_") {
			t.Errorf("name %q", name)
		}
		for _, tt := range []struct {
			what string
			fsys fstest.MapFS
			same bool
		}{
			{"the same files", fstest.MapFS{"00001_a.sql": {Data: []byte("CREATE TABLE a ();")}}, true},
			{"a changed file", fstest.MapFS{"00001_a.sql": {Data: []byte("CREATE TABLE b ();")}}, false},
			{"a renamed file", fstest.MapFS{"00002_a.sql": {Data: []byte("CREATE TABLE a ();")}}, false},
			{"another file", fstest.MapFS{"00001_a.sql": base["00001_a.sql"], "00002_b.sql": {Data: []byte("SELECT 1;")}}, false},
		} {
			if got := dbtest.TemplateName(tt.fsys); (got == name) != tt.same {
				t.Errorf("%s: name %s, base's %s, want same = %v", tt.what, got, name, tt.same)
			}
		}
	})

	t.Run("builders at once build one complete template, over a dead builder's remains", func(t *testing.T) {
		ctx, conn := adminConn(t)
		name := "foodpipe_template_test_" + strings.ToLower(rand.Text()[:8])
		t.Cleanup(func() { dropDatabases(t, name, name+"_building") })
		// A builder that died after creating its database and before migrating
		// it: a table no migration makes marks what it left.
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+"_building"); err != nil {
			t.Fatal(err)
		}
		half, err := pgx.Connect(ctx, strings.Replace(dbtest.DefaultAdminURL, "/postgres?", "/"+name+"_building?", 1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := half.Exec(ctx, "CREATE TABLE half_built ()"); err != nil {
			t.Fatal(err)
		}
		half.Close(ctx)

		errs := make(chan error, 3)
		for range cap(errs) {
			go func() {
				conn, err := pgx.Connect(ctx, dbtest.DefaultAdminURL)
				if err != nil {
					errs <- err
					return
				}
				defer conn.Close(ctx)
				errs <- dbtest.EnsureTemplate(conn, name)
			}()
		}
		for range cap(errs) {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		oid := oidOf(t, name)
		if oid == 0 || exists(t, name+"_building") {
			t.Fatalf("after the builds: template %s exists = %v, building one exists = %v", name, oid != 0, exists(t, name+"_building"))
		}
		st := copyOf(t, name)
		if applied := appliedAt(t, st); len(applied) != len(migrationFiles(t)) {
			t.Errorf("the copy has %d migrations applied, want %d", len(applied), len(migrationFiles(t)))
		}
		var halfBuilt bool
		if err := st.Pool().QueryRow(ctx, `SELECT to_regclass('half_built') IS NOT NULL`).Scan(&halfBuilt); err != nil || halfBuilt {
			t.Errorf("the copy has the dead builder's table: %v, %v", halfBuilt, err)
		}

		if err := dbtest.EnsureTemplate(conn, name); err != nil || oidOf(t, name) != oid {
			t.Errorf("a second EnsureTemplate: %v, template oid %d, was %d; want it kept", err, oidOf(t, name), oid)
		}
	})
}

// nameOf returns the name of a store's database.
func nameOf(t *testing.T, st *store.Store) string {
	t.Helper()
	var name string
	if err := st.Pool().QueryRow(context.Background(), `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// appliedAt returns when each applied migration was applied, by version.
func appliedAt(t *testing.T, st *store.Store) []time.Time {
	t.Helper()
	ms, err := st.MigrateStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var at []time.Time
	for _, m := range ms {
		if m.Applied {
			at = append(at, m.AppliedAt)
		}
	}
	return at
}

func migrationFiles(t *testing.T) []string {
	t.Helper()
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("migrations: %v, %v", files, err)
	}
	return files
}

// oidOf returns a database's oid, 0 if there is none of that name.
func oidOf(t *testing.T, name string) uint32 {
	t.Helper()
	ctx, conn := adminConn(t)
	var oid uint32
	err := conn.QueryRow(ctx, `SELECT oid FROM pg_database WHERE datname = $1`, name).Scan(&oid)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return oid
}

// copyOf returns a store on a copy of the template called name, both
// dropped when the test ends.
func copyOf(t *testing.T, name string) *store.Store {
	t.Helper()
	ctx, conn := adminConn(t)
	copyName := name + "_copy"
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+copyName+" TEMPLATE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropDatabases(t, copyName) })
	st, err := store.Open(ctx, strings.Replace(dbtest.DefaultAdminURL, "/postgres?", "/"+copyName+"?", 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

func dropDatabases(t *testing.T, names ...string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbtest.DefaultAdminURL)
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close(context.Background())
	for _, name := range names {
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	}
}

// fatalTB records Fatalf instead of stopping the test, so that the failure
// paths of New can be checked.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

// roleWithoutCreatedb returns the admin URL of a new role that may log in
// but not create databases, dropped when the test ends.
func roleWithoutCreatedb(t *testing.T) string {
	t.Helper()
	ctx, conn := adminConn(t)
	role := fmt.Sprintf("foodpipe_test_nocreatedb_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE ROLE "+role+" LOGIN NOCREATEDB"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dbtest.DefaultAdminURL)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP ROLE "+role); err != nil {
			t.Error(err)
		}
	})
	return strings.Replace(dbtest.DefaultAdminURL, "//postgres@", "//"+role+"@", 1)
}

func TestNewFailsWithoutSkipping(t *testing.T) {
	tests := []struct {
		name  string
		admin string
		want  []string
	}{
		{"an unreachable server fails the test and says how to start it",
			"postgres://postgres:hunter2@127.0.0.1:1/postgres?connect_timeout=5",
			[]string{"cannot reach PostgreSQL", "pg_ctlcluster", dbtest.EnvAdminURL, "127.0.0.1:1"}},
		{"an admin URL that is not postgres:// fails the test", "mysql://localhost/x", []string{dbtest.EnvAdminURL}},
		{"a user who may not create databases fails the test with the reason",
			roleWithoutCreatedb(t), []string{"create database foodpipe_test_", "permission denied"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(dbtest.EnvAdminURL, tt.admin)
			f := &fatalTB{TB: t}
			if got := dbtest.New(f); got != "" {
				t.Errorf("New = %q, want no database", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(f.msg, w) {
					t.Errorf("message %q does not mention %q", f.msg, w)
				}
			}
			newMsg := f.msg
			f.msg = ""
			if st := dbtest.NewStore(f); st != nil || f.msg == "" {
				t.Errorf("NewStore = %v, message %q, want no store and a failed test", st, f.msg)
			}
			if t.Skipped() {
				t.Error("New or NewStore skipped the test")
			}
			if strings.Contains(newMsg+f.msg, "hunter2") {
				t.Errorf("a message reveals the password: %s\n%s", newMsg, f.msg)
			}
		})
	}
}
