package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"text/tabwriter"
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

// MigrateStatus writes one line per known migration to w: its version, file
// name, and when it was applied or "pending".
func (s *Store) MigrateStatus(ctx context.Context, w io.Writer) error {
	return s.withProvider(func(p *goose.Provider) error {
		statuses, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("migrate status: %w", err)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, st := range statuses {
			state := "pending"
			if st.State == goose.StateApplied {
				state = "applied at " + st.AppliedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\n", st.Source.Version, path.Base(st.Source.Path), state)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("migrate status: %w", err)
		}
		return nil
	})
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
