// Package localpg finds a PostgreSQL for `foodpipe demo`, so that a newcomer
// needs no set-up: the one named by DATABASE_URL, else the server on this
// machine (in a database of the demo's own), else a throwaway server started
// from the installed PostgreSQL binaries and removed afterwards.
package localpg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Options say where to look.
type Options struct {
	// DatabaseURL is used as is when set.
	DatabaseURL string
	// LocalAddr is the local server tried next; default 127.0.0.1:5432.
	LocalAddr string
	// DBName is the database created on the local server; default foodpipe_demo.
	DBName string
	// User connects to the local server; default postgres.
	User   string
	Logger *slog.Logger
}

// Source says which of the three was found.
type Source string

const (
	FromURL   Source = "DATABASE_URL"
	FromLocal Source = "local server"
	FromTemp  Source = "temporary cluster"
)

// DB is a PostgreSQL to use.
type DB struct {
	URL    string
	Source Source
	stop   func() error
}

// Close stops and removes a temporary cluster; it does nothing otherwise.
func (d *DB) Close() error {
	if d.stop == nil {
		return nil
	}
	stop := d.stop
	d.stop = nil
	return stop()
}

// ErrNotFound means no PostgreSQL could be found or started.
var ErrNotFound = errors.New("no PostgreSQL found: set DATABASE_URL, start a server on 127.0.0.1:5432, " +
	"or install the PostgreSQL server binaries (Debian/Ubuntu: apt-get install postgresql)")

// Resolve returns the first PostgreSQL that answers, in the order the package doc gives.
func Resolve(ctx context.Context, o Options) (*DB, error) {
	if o.LocalAddr == "" {
		o.LocalAddr = "127.0.0.1:5432"
	}
	if o.DBName == "" {
		o.DBName = "foodpipe_demo"
	}
	if o.User == "" {
		o.User = "postgres"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DatabaseURL != "" {
		if err := ping(ctx, o.DatabaseURL); err != nil {
			return nil, fmt.Errorf("DATABASE_URL %s: %w", redact(o.DatabaseURL), err)
		}
		return &DB{URL: o.DatabaseURL, Source: FromURL}, nil
	}
	if conn, err := net.DialTimeout("tcp", o.LocalAddr, time.Second); err == nil {
		conn.Close()
		u, err := ensureDatabase(ctx, o.LocalAddr, o.User, o.DBName)
		if err != nil {
			return nil, err
		}
		return &DB{URL: u, Source: FromLocal}, nil
	}
	o.Logger.Info("no PostgreSQL server at " + o.LocalAddr + "; starting a temporary one")
	return StartTemp(ctx, o.Logger)
}

func ping(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

func localURL(addr, usr, db string) string {
	return (&url.URL{Scheme: "postgres", User: url.User(usr), Host: addr, Path: "/" + db, RawQuery: "sslmode=disable"}).String()
}

// ensureDatabase creates the database on the server when it is missing.
func ensureDatabase(ctx context.Context, addr, usr, db string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, localURL(addr, usr, "postgres"))
	if err != nil {
		return "", fmt.Errorf("connect to the PostgreSQL server at %s as %s: %w", addr, usr, err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&exists); err != nil {
		return "", fmt.Errorf("look for database %s: %w", db, err)
	}
	if !exists {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
		var pgErr *pgconn.PgError
		// 42P04: another process created it a moment ago, which is fine.
		if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P04") {
			return "", fmt.Errorf("create database %s: %w", db, err)
		}
	}
	return localURL(addr, usr, db), nil
}

// searchDirs are where server binaries are looked for after PATH and pg_config.
var searchDirs = func() []string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first.
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	return append(dirs, "/usr/local/pgsql/bin", "/usr/local/bin")
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// FindBinaries returns a directory holding initdb, pg_ctl and postgres.
func FindBinaries() (string, error) {
	var cands []string
	if p, err := exec.LookPath("postgres"); err == nil {
		cands = append(cands, filepath.Dir(p))
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		cands = append(cands, strings.TrimSpace(string(out)))
	}
	cands = append(cands, searchDirs()...)
	for _, d := range cands {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", ErrNotFound
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// StartTemp initialises and starts a throwaway cluster on a free loopback
// port. PostgreSQL refuses to run as root, so as root it runs as the
// postgres user (or nobody).
func StartTemp(ctx context.Context, log *slog.Logger) (*DB, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "foodpipe-pg-")
	if err != nil {
		return nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	cred, err := runAs(dir)
	if err != nil {
		cleanup()
		return nil, err
	}
	data := filepath.Join(dir, "data")
	run := func(name string, args ...string) error {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync"); err != nil {
		cleanup()
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		cleanup()
		return nil, err
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off", port, dir)
	if err := run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "30", "start"); err != nil {
		cleanup()
		return nil, err
	}
	u := localURL(fmt.Sprintf("127.0.0.1:%d", port), "postgres", "postgres")
	stop := func() error {
		defer cleanup()
		return run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
	}
	if err := ping(ctx, u); err != nil {
		stop()
		return nil, fmt.Errorf("temporary PostgreSQL did not answer: %w", err)
	}
	log.Info("temporary PostgreSQL started", slog.String("dir", dir), slog.Int("port", port))
	return &DB{URL: u, Source: FromTemp, stop: stop}, nil
}

// runAs returns the credential the server runs as (nil when not root) and
// hands it the directory.
func runAs(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	var u *user.User
	var err error
	for _, name := range []string{"postgres", "nobody"} {
		if u, err = user.Lookup(name); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("running as root and no postgres or nobody user to run PostgreSQL as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
