// Package localpg finds a PostgreSQL for `foodpipe demo`, so that a newcomer
// needs no set-up: the one named by DATABASE_URL, else the server on this
// machine (in a database of the demo's own), else a throwaway cluster started
// from the installed PostgreSQL server binaries and removed afterwards.
//
// Each way is exported on its own (StartTemp, FindBinaries) so that it can
// be tested, and used, without the others.
package localpg

import (
	"context"
	"errors"
	"fmt"
	"foodpipe/internal/secret"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var (
	// ErrNotFound means Resolve found no PostgreSQL and could start none;
	// its message says what to set or install.
	ErrNotFound = errors.New("no PostgreSQL found")
	// ErrNoBinaries means FindBinaries found no directory holding initdb,
	// pg_ctl and postgres.
	ErrNoBinaries = errors.New("no PostgreSQL server binaries (initdb, pg_ctl, postgres) found")
)

// Options say where to look. The zero value looks in the usual places.
type Options struct {
	// DatabaseURL is used as is when set, and nothing else is tried: a user
	// who names a database wants that one, not a silent stand-in. Pass it
	// only when the user set DATABASE_URL explicitly, not a config default.
	DatabaseURL string
	// LocalAddr is the local server tried next; default 127.0.0.1:5432.
	LocalAddr string
	// DBName is the database used, and created when missing, on the local
	// server, so the demo never writes into a database of the user's;
	// default foodpipe_demo.
	DBName string
	// User connects to the local server; default postgres. A password, if
	// the server wants one, comes from PGPASSWORD or ~/.pgpass.
	User string
	// Logger says which PostgreSQL was chosen and why; default discards.
	Logger *slog.Logger
}

// Source says which of the three ways found the database.
type Source string

const (
	FromURL   Source = "DATABASE_URL"
	FromLocal Source = "local server"
	FromTemp  Source = "temporary cluster"
)

// DB is a PostgreSQL to use. Call Close when done with it.
type DB struct {
	// URL connects to the database; it carries no password unless
	// DatabaseURL did.
	URL    string
	Source Source

	dir  string       // the temporary cluster's directory; "" otherwise
	stop func() error // stops and removes a temporary cluster; nil otherwise
	once sync.Once
	err  error
}

// Close stops a temporary cluster (fast shutdown) and removes its directory;
// it does nothing for the other sources. It does not take a context on
// purpose: it must still work after the caller's context was cancelled,
// which is exactly when a deferred Close runs on Ctrl-C.
func (d *DB) Close() error {
	d.once.Do(func() {
		if d.stop != nil {
			d.err = d.stop()
		}
	})
	return d.err
}

// Resolve returns the first PostgreSQL it can use: DatabaseURL when set
// (it must answer), else the server at LocalAddr when one answers within a
// second (DBName is created there when missing), else a temporary cluster
// from StartTemp. When none works the error says what to set or install.
//
// A local server that answers but refuses us (a password we do not have,
// no right to create databases) does not end the search: a newcomer with a
// distribution's PostgreSQL often has exactly that, and a temporary cluster
// still works for them.
func Resolve(ctx context.Context, o Options) (*DB, error) {
	o = o.withDefaults()
	if o.DatabaseURL != "" {
		if err := ping(ctx, o.DatabaseURL); err != nil {
			return nil, fmt.Errorf("DATABASE_URL %s does not answer: %w", secret.RedactURL(o.DatabaseURL), err)
		}
		o.Logger.Info("using PostgreSQL from DATABASE_URL", slog.String("url", secret.RedactURL(o.DatabaseURL)))
		return &DB{URL: o.DatabaseURL, Source: FromURL}, nil
	}

	var localErr error
	if answers(ctx, o.LocalAddr) {
		u, err := ensureDatabase(ctx, o.LocalAddr, o.User, o.DBName)
		if err == nil {
			o.Logger.Info("using the local PostgreSQL server",
				slog.String("addr", o.LocalAddr), slog.String("database", o.DBName))
			return &DB{URL: u, Source: FromLocal}, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		localErr = err
		o.Logger.Warn("the local PostgreSQL server cannot be used; starting a temporary cluster",
			slog.String("addr", o.LocalAddr), slog.Any("err", err))
	} else {
		o.Logger.Info("no PostgreSQL server answers; starting a temporary cluster", slog.String("addr", o.LocalAddr))
	}

	db, err := StartTemp(ctx, o.Logger)
	switch {
	case err == nil:
		return db, nil
	case localErr != nil:
		return nil, fmt.Errorf("%w; set DATABASE_URL to a database you can use (a temporary cluster did not start either: %w)",
			localErr, err)
	case errors.Is(err, ErrNoBinaries):
		return nil, fmt.Errorf("%w: set DATABASE_URL, start a server on %s, "+
			"or install the PostgreSQL server binaries (Debian/Ubuntu: apt-get install postgresql)", ErrNotFound, o.LocalAddr)
	default:
		return nil, err
	}
}

func (o Options) withDefaults() Options {
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
	return o
}

// answers reports whether anything accepts TCP connections at addr within a
// second; a closed port refuses at once, a firewalled one costs the second.
func answers(ctx context.Context, addr string) bool {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	_ = conn.Close() // it answered: that was the question
	return true
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

func pgURL(addr, user, db string) string {
	return (&url.URL{
		Scheme:   "postgres",
		User:     url.User(user),
		Host:     addr,
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}).String()
}

// ensureDatabase creates db on the server at addr when it is missing and
// returns its URL.
func ensureDatabase(ctx context.Context, addr, user, db string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL(addr, user, "postgres"))
	if err != nil {
		return "", fmt.Errorf("connect to the PostgreSQL server at %s as %s: %w", addr, user, err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db).Scan(&exists); err != nil {
		return "", fmt.Errorf("look for database %s: %w", db, err)
	}
	if !exists {
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
		// Two demos starting at once both see the database missing; the
		// loser gets 42P04 (duplicate_database) when the winner has
		// committed, or 23505 on pg_database's unique index when both were
		// creating at the same moment. Either way the database is there.
		var pgErr *pgconn.PgError
		exists := errors.As(err, &pgErr) && (pgErr.Code == pgerrcode.DuplicateDatabase || pgErr.Code == pgerrcode.UniqueViolation)
		if err != nil && !exists {
			return "", fmt.Errorf("create database %s: %w", db, err)
		}
	}
	return pgURL(addr, user, db), nil
}
