package store

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"foodpipe/migrations"
)

// MigrateUp applies every pending migration. It is idempotent, and safe to
// run from several processes at once: a PostgreSQL advisory lock lets one
// migrate while the others wait and then find nothing to do.
func (s *Store) MigrateUp(ctx context.Context) error {
	return s.withProvider(func(p *goose.Provider) error {
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
		return nil
	})
}

// MigrateDown rolls back the most recently applied migration, one step. It
// returns ErrNoMigrationToRollBack when none is applied.
func (s *Store) MigrateDown(ctx context.Context) error {
	return s.withProvider(func(p *goose.Provider) error {
		_, err := p.Down(ctx)
		if errors.Is(err, goose.ErrNoNextVersion) {
			return fmt.Errorf("migrate down: %w", ErrNoMigrationToRollBack)
		}
		if err != nil {
			return fmt.Errorf("migrate down: %w", err)
		}
		return nil
	})
}

// Migration is one migration the binary knows, and whether the database has
// it.
type Migration struct {
	Version int64
	File    string // the file's name in migrations/, such as 00001_create_orders.sql
	// Applied says whether the database has it, and AppliedAt since when;
	// a pending migration has neither.
	Applied   bool
	AppliedAt time.Time
}

// MigrateStatus returns every migration the binary knows, by version, with
// when each was applied. It prints nothing: `foodpipe migrate` does.
func (s *Store) MigrateStatus(ctx context.Context) ([]Migration, error) {
	var out []Migration
	err := s.withProvider(func(p *goose.Provider) error {
		statuses, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("migrate status: %w", err)
		}
		out = make([]Migration, 0, len(statuses))
		for _, st := range statuses {
			m := Migration{Version: st.Source.Version, File: path.Base(st.Source.Path)}
			if st.State == goose.StateApplied {
				m.Applied, m.AppliedAt = true, st.AppliedAt
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// withProvider runs fn with a goose provider over the embedded migrations,
// borrowing connections from the pool through database/sql.
func (s *Store) withProvider(fn func(*goose.Provider) error) error {
	// Poll for the lock every second (goose's default is five) for up to
	// five minutes, so that parallel consumers starting together wait only
	// as long as the first one takes to migrate.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	return fn(p)
}
