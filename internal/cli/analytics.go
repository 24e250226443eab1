package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/consumer"
	"foodpipe/internal/demo"
	"foodpipe/internal/report"
	"foodpipe/internal/store"
	"foodpipe/internal/telemetry"
	"foodpipe/internal/wire"
)

// ErrAnalyticsDiffer means the analytics group's aggregates are not the
// orders table's sums: verify's error, as the demo's verdict's.
var ErrAnalyticsDiffer = demo.ErrAnalyticsDiffer

// runAnalytics runs a member of the analytics group (the default), prints
// its report, or checks its aggregates against the orders table.
func runAnalytics(ctx context.Context, env *Env, args []string) error {
	sub := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "run":
		return runMember(ctx, env, "analytics", args, member{groupVar: config.KafkaAnalyticsGroup,
			group: func(c config.Config) string { return c.AnalyticsGroup },
			sink: func(st *store.Store, _ config.Config, _ *telemetry.Metrics) (consumer.Store, error) {
				return st.Analytics(), nil
			}})
	case "report", "verify":
	default:
		return fmt.Errorf("%w: foodpipe analytics [run|report|verify] [flags]", ErrUsage)
	}
	f, err := newFlags(env, "analytics "+sub)
	if err != nil {
		return err
	}
	f.dbFlags()
	f.bind("group", config.KafkaAnalyticsGroup)
	minutes := f.Int("minutes", 60, "report: the revenue of this many minutes, up to now")
	top := f.Int("top", 5, "report: how many items and customers to list")
	asJSON := f.Bool("json", false, "report: print it as one JSON object")
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	if *minutes < 1 || *top < 1 {
		return fmt.Errorf("%w: --minutes and --top must be at least 1", ErrUsage)
	}
	st, err := wire.OpenStore(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	if sub == "verify" {
		return verifyAnalytics(ctx, env, st, cfg.AnalyticsGroup)
	}
	now := time.Now().UTC()
	r, err := st.Analytics().Report(ctx, cfg.AnalyticsGroup, now.Add(-time.Duration(*minutes-1)*time.Minute), *top)
	if err != nil {
		return err
	}
	return show(env, *asJSON, r, report.PrintAnalytics)
}

// verifyAnalytics holds group's aggregates against the orders it counted.
// The orders it has not counted are told as a number: they are its lag, or
// orders stored before it began (a database shared with an earlier run).
func verifyAnalytics(ctx context.Context, env *Env, st *store.Store, group string) error {
	c, err := st.Analytics().Check(ctx, group)
	if err != nil {
		return err
	}
	report.PrintAnalyticsCheck(env.Stdout, c)
	if len(c.Differences) > 0 {
		return fmt.Errorf("%w (group %s; let both groups catch up first: foodpipe status)", ErrAnalyticsDiffer, group)
	}
	return nil
}
