package dbtest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"foodpipe/internal/store/dbtest"
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
	t.Run("NewStore returns a migrated store", func(t *testing.T) {
		st := dbtest.NewStore(t)
		n, err := st.Count(context.Background())
		if err != nil || n != 0 {
			t.Errorf("Count = %d, %v, want 0 from an empty orders table", n, err)
		}
	})
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
			if st := dbtest.NewStore(f); st != nil {
				t.Errorf("NewStore = %v, want no store", st)
			}
			if t.Skipped() {
				t.Error("New skipped the test")
			}
			for _, w := range tt.want {
				if !strings.Contains(f.msg, w) {
					t.Errorf("message %q does not mention %q", f.msg, w)
				}
			}
			if strings.Contains(f.msg, "hunter2") {
				t.Errorf("message reveals the password: %s", f.msg)
			}
		})
	}
}
