package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/store"
	"foodpipe/internal/wire"
)

func runMigrate(ctx context.Context, env *Env, args []string) error {
	build := func(sub string) (*flags, error) {
		f, err := newFlags(env, "migrate "+sub)
		if err != nil {
			return nil, err
		}
		f.dbFlags()
		f.bind("log-level", config.LogLevel)
		return f, nil
	}
	sub, err := subcommand(env, args, "foodpipe migrate up|down|status [--database-url URL]", []string{"up", "down", "status"}, build)
	if err != nil {
		return err
	}
	f, err := build(sub)
	if err != nil {
		return err
	}
	cfg, err := f.parse(args[1:])
	if err != nil {
		return err
	}
	st, err := wire.OpenStore(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	switch sub {
	case "up":
		err = st.MigrateUp(ctx)
	case "down":
		err = st.MigrateDown(ctx)
	}
	if err != nil {
		return err
	}
	ms, err := st.MigrateStatus(ctx)
	if err != nil {
		return err
	}
	return printMigrations(env.Stdout, ms)
}

// printMigrations writes one line per migration: its version, file name,
// and when it was applied or "pending".
func printMigrations(w io.Writer, ms []store.Migration) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, m := range ms {
		state := "pending"
		if m.Applied {
			state = "applied at " + m.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", m.Version, m.File, state)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("migrate status: %w", err)
	}
	return nil
}
