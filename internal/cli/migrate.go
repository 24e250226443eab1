package cli

import (
	"context"
	"fmt"
	"foodpipe/internal/pipeline"
)

func runMigrate(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || (args[0] != "up" && args[0] != "down" && args[0] != "status") {
		return fmt.Errorf("%w: foodpipe migrate up|down|status [--database-url URL]", ErrUsage)
	}
	f, err := newFlags(env, "migrate "+args[0])
	if err != nil {
		return err
	}
	f.dbFlags()
	f.bind("log-level", "LOG_LEVEL")
	cfg, err := f.parse(args[1:])
	if err != nil {
		return err
	}
	st, err := pipeline.OpenStore(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	switch args[0] {
	case "up":
		err = st.MigrateUp(ctx)
	case "down":
		err = st.MigrateDown(ctx)
	}
	if err != nil {
		return err
	}
	return st.MigrateStatus(ctx, env.Stdout)
}
