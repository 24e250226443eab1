package cli

import (
	"context"

	"foodpipe/internal/config"
	"foodpipe/internal/report"
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
	return report.PrintMigrations(env.Stdout, ms)
}
