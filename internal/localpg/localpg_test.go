package localpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// server is the PostgreSQL the tests need running (see the README).
const server = "127.0.0.1:5432"

// closedAddr returns a loopback address nothing listens at.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// notPostgres returns the address of a listener that accepts connections
// and closes them at once, as something that is not PostgreSQL would.
func notPostgres(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	return ln.Addr().String()
}

// uniqueDB returns a fresh database name and drops that database on the
// test server when the test ends.
func uniqueDB(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "foodpipe_localpg_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, pgURL(server, "postgres", "postgres"))
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return name
}

// noBinaries makes FindBinaries look only in empty places.
func noBinaries(t *testing.T) {
	t.Helper()
	withSearchDirs(t, t.TempDir())
	t.Setenv("PATH", t.TempDir())
}

func withSearchDirs(t *testing.T, dirs ...string) {
	t.Helper()
	saved := searchDirs
	searchDirs = func() []string { return dirs }
	t.Cleanup(func() { searchDirs = saved })
}

// fakeInstall makes a directory holding executables with the given names.
func fakeInstall(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestResolveWithDatabaseURL(t *testing.T) {
	dead := closedAddr(t)
	host, port, _ := net.SplitHostPort(dead)
	tests := []struct {
		name    string
		url     string
		wantErr []string // all in the error; none means success
	}{
		{
			name: "a URL of the running server is used as is",
			url:  "postgres://postgres@" + server + "/postgres?sslmode=disable",
		},
		{
			name:    "a URL nobody answers at is an error naming it without the password",
			url:     "postgres://u:topsecret@" + dead + "/x?sslmode=disable&connect_timeout=2",
			wantErr: []string{"DATABASE_URL", "postgres://u:xxxxx@" + dead + "/x"},
		},
		{
			name:    "a keyword/value string nobody answers at is an error without the password",
			url:     fmt.Sprintf("host=%s port=%s user=u password=topsecret dbname=x sslmode=disable connect_timeout=2", host, port),
			wantErr: []string{"DATABASE_URL", "host=" + host, "password=xxxxx"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Resolve(context.Background(), Options{DatabaseURL: tt.url})
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("the test PostgreSQL at %s must run: %v", server, err)
				}
				defer db.Close()
				if db.Source != FromURL || db.URL != tt.url {
					t.Errorf("got %s from %s, want %s from %s", db.URL, db.Source, tt.url, FromURL)
				}
				return
			}
			if err == nil {
				db.Close()
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "topsecret") {
				t.Errorf("the error shows the password: %v", err)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error lacks %q: %v", want, err)
				}
			}
		})
	}
}

func TestResolveWithTheLocalServer(t *testing.T) {
	tests := []struct {
		name     string
		together int // Resolves started at once; they run twice
	}{
		{name: "a missing database is created and a second Resolve reuses it", together: 1},
		{name: "demos starting at the same moment all get the database", together: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			name := uniqueDB(t)
			for round := 1; round <= 2; round++ {
				dbs := make([]*DB, tt.together)
				errs := make([]error, tt.together)
				var wg sync.WaitGroup
				for i := range tt.together {
					wg.Go(func() { dbs[i], errs[i] = Resolve(ctx, Options{LocalAddr: server, DBName: name}) })
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Fatalf("round %d, Resolve %d: %v", round, i, err)
					}
					if db := dbs[i]; db.Source != FromLocal || !strings.Contains(db.URL, "/"+name+"?") {
						t.Fatalf("round %d: got %s from %s", round, db.URL, db.Source)
					}
					if err := dbs[i].Close(); err != nil {
						t.Errorf("Close of a local server database: %v", err)
					}
				}
				conn, err := pgx.Connect(ctx, dbs[0].URL)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				// A table made in the first round is still there in the
				// second: the database was reused, not made anew.
				var sql string
				if round == 1 {
					sql = "CREATE TABLE made_in_round_one (id int)"
				} else {
					sql = "SELECT count(*) FROM made_in_round_one"
				}
				if _, err := conn.Exec(ctx, sql); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
		})
	}
}

func TestResolveStartsATemporaryCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	tests := []struct {
		name  string
		local func(*testing.T) string
	}{
		{name: "nothing listens at the local address", local: closedAddr},
		{name: "what listens at the local address is not PostgreSQL", local: notPostgres},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Cancelled before Close, as on Ctrl-C: Close must still stop it.
			ctx, cancel := context.WithCancel(context.Background())
			db, err := Resolve(ctx, Options{LocalAddr: tt.local(t)})
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if db.Source != FromTemp {
				t.Fatalf("source %s", db.Source)
			}
			conn, err := pgx.Connect(ctx, db.URL)
			if err != nil {
				t.Fatal(err)
			}
			var one, pid int
			if err := conn.QueryRow(ctx, "SELECT 1, pg_backend_pid()").Scan(&one, &pid); err != nil || one != 1 {
				t.Fatalf("select 1: %d, %v", one, err)
			}
			if os.Geteuid() == 0 {
				// PostgreSQL refuses root; it must run as the postgres user.
				// The backend lives as long as its connection: read it first.
				pg, err := user.Lookup("postgres")
				if err != nil {
					t.Fatal(err)
				}
				if uid := processUID(t, pid); uid != pg.Uid {
					t.Errorf("the server runs as uid %s, want the postgres user's %s", uid, pg.Uid)
				}
			}
			conn.Close(ctx)
			cancel()

			if err := db.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if _, err := os.Stat(db.dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the cluster directory %s is still there: %v", db.dir, err)
			}
			if err := ping(context.Background(), db.URL+"&connect_timeout=2"); err == nil {
				t.Error("the temporary server still answers after Close")
			}
			if err := db.Close(); err != nil {
				t.Errorf("a second Close: %v", err)
			}
		})
	}
}

// processUID returns the real uid a process runs as, from /proc.
func processUID(t *testing.T, pid int) string {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			return strings.Fields(rest)[0]
		}
	}
	t.Fatalf("no Uid line in /proc/%d/status", pid)
	return ""
}

func TestResolveWithNothingToUse(t *testing.T) {
	tests := []struct {
		name    string
		local   func(*testing.T) string
		is      []error
		wantErr []string
	}{
		{
			name:    "with no server and no binaries the error says what to install",
			local:   closedAddr,
			is:      []error{ErrNotFound},
			wantErr: []string{"set DATABASE_URL", "start a server on 127.0.0.1:", "apt-get install postgresql"},
		},
		{
			name:    "with an unusable server and no binaries the error tells both",
			local:   notPostgres,
			is:      []error{ErrNoBinaries},
			wantErr: []string{"connect to the PostgreSQL server at 127.0.0.1:", "set DATABASE_URL", "did not start either"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noBinaries(t)
			db, err := Resolve(context.Background(), Options{LocalAddr: tt.local(t)})
			if err == nil {
				db.Close()
				t.Fatalf("got %s from %s", db.URL, db.Source)
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("the error is not %v: %v", target, err)
				}
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error lacks %q: %v", want, err)
				}
			}
		})
	}
}

func TestResolveGivesUpWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	db, err := Resolve(ctx, Options{LocalAddr: closedAddr(t)})
	if err == nil {
		db.Close()
		t.Fatal("a cancelled Resolve started a cluster")
	}
	if _, err := Resolve(ctx, Options{LocalAddr: server, DBName: "foodpipe_never_made"}); err == nil {
		t.Fatal("a cancelled Resolve used the local server")
	}
}

func TestStartTempAsRootNeedsAUserToRunAs(t *testing.T) {
	saved := serverUsers
	serverUsers = []string{"foodpipe-no-such-user"}
	t.Cleanup(func() { serverUsers = saved })
	db, err := StartTemp(context.Background(), nil)
	if os.Geteuid() != 0 {
		// Not root: there is nobody to switch to, and no need.
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		return
	}
	if err == nil {
		db.Close()
		t.Fatal("started as root without a user to run as")
	}
	if !strings.Contains(err.Error(), "does not run as root") {
		t.Errorf("err = %v", err)
	}
}

func TestFindBinaries(t *testing.T) {
	all := []string{"initdb", "pg_ctl", "postgres"}
	tests := []struct {
		name    string
		setup   func(t *testing.T) (want string) // "" wants ErrNoBinaries
		realEnv bool
	}{
		{
			name: "the binaries installed on this machine are found",
			setup: func(t *testing.T) string {
				return "" // checked below: any directory with all three
			},
			realEnv: true,
		},
		{
			name: "a search directory is used when PATH has none",
			setup: func(t *testing.T) string {
				t.Setenv("PATH", t.TempDir())
				full := fakeInstall(t, all...)
				withSearchDirs(t, t.TempDir(), full)
				return full
			},
		},
		{
			name: "a directory without postgres is passed over",
			setup: func(t *testing.T) string {
				t.Setenv("PATH", t.TempDir())
				full := fakeInstall(t, all...)
				withSearchDirs(t, fakeInstall(t, "initdb", "pg_ctl"), full)
				return full
			},
		},
		{
			name: "a link on PATH leads to the directory it points into",
			setup: func(t *testing.T) string {
				full := fakeInstall(t, all...)
				links := t.TempDir()
				if err := os.Symlink(filepath.Join(full, "initdb"), filepath.Join(links, "initdb")); err != nil {
					t.Fatal(err)
				}
				t.Setenv("PATH", links)
				withSearchDirs(t)
				return full
			},
		},
		{
			name: "PATH comes before the search directories",
			setup: func(t *testing.T) string {
				onPath := fakeInstall(t, all...)
				t.Setenv("PATH", onPath)
				withSearchDirs(t, fakeInstall(t, all...))
				return onPath
			},
		},
		{
			name: "with none anywhere the error lists where it looked",
			setup: func(t *testing.T) string {
				noBinaries(t)
				return ""
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.setup(t)
			dir, err := FindBinaries()
			switch {
			case tt.realEnv:
				if err != nil {
					t.Fatalf("this machine needs the PostgreSQL server binaries: %v", err)
				}
				for _, name := range all {
					if !isExec(filepath.Join(dir, name)) {
						t.Errorf("%s has no %s", dir, name)
					}
				}
			case want == "":
				if !errors.Is(err, ErrNoBinaries) || !strings.Contains(err.Error(), "pg_config --bindir") {
					t.Errorf("got %q, %v; want ErrNoBinaries", dir, err)
				}
			default:
				if err != nil || dir != want {
					t.Errorf("got %q, %v; want %q", dir, err, want)
				}
			}
		})
	}
}

func TestNewestFirst(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{
			name: "Debian major versions sort by number, not by text",
			in:   []string{"/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/10/bin"},
			want: []string{"/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/10/bin", "/usr/lib/postgresql/9.6/bin"},
		},
		{
			name: "RHEL directories sort by the number after pgsql-",
			in:   []string{"/usr/pgsql-9.6/bin", "/usr/pgsql-16/bin", "/usr/pgsql-13/bin"},
			want: []string{"/usr/pgsql-16/bin", "/usr/pgsql-13/bin", "/usr/pgsql-9.6/bin"},
		},
		{
			name: "a directory without a version goes last",
			in:   []string{"/usr/lib/postgresql/devel/bin", "/usr/lib/postgresql/14/bin"},
			want: []string{"/usr/lib/postgresql/14/bin", "/usr/lib/postgresql/devel/bin"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(newestFirst(tt.in), " ")
			if want := strings.Join(tt.want, " "); got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}

func TestTheDefaultSearchDirsEndWithTheSourceInstall(t *testing.T) {
	dirs := searchDirs()
	if len(dirs) == 0 || dirs[len(dirs)-1] != "/usr/local/pgsql/bin" {
		t.Errorf("got %v", dirs)
	}
}

func TestCloseOfADatabaseNotStartedHereDoesNothing(t *testing.T) {
	db := &DB{URL: "postgres://x", Source: FromLocal}
	for range 2 {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// A start that is cut short leaves no directory behind.
func TestStartTempCleansUpAfterAFailedStart(t *testing.T) {
	tmp, err := os.MkdirTemp("", "localpg-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	// Open to the postgres user, which runs initdb when we are root.
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	db, err := StartTemp(ctx, nil)
	if err == nil {
		db.Close()
		t.Fatal("a cluster started within 20 ms")
	}
	left, _ := os.ReadDir(tmp)
	if len(left) > 0 {
		t.Errorf("a failed start left %s behind", left[0].Name())
	}
}
