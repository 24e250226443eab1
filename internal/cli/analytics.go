package cli

import (
	"context"
	"fmt"
	"io"
	"math/big"
	"strings"
	"text/tabwriter"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/consumer"
	"foodpipe/internal/demo"
	"foodpipe/internal/store"
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
			sink:  func(st *store.Store) consumer.Store { return st.Analytics() }})
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
	return report(env, *asJSON, r, printAnalytics)
}

// verifyAnalytics holds group's aggregates against the orders it counted.
// The orders it has not counted are told as a number: they are its lag, or
// orders stored before it began (a database shared with an earlier run).
func verifyAnalytics(ctx context.Context, env *Env, st *store.Store, group string) error {
	c, err := st.Analytics().Check(ctx, group)
	if err != nil {
		return err
	}
	for _, d := range c.Differences {
		fmt.Fprintln(env.Stdout, safe(d))
	}
	if len(c.Differences) > 0 {
		return fmt.Errorf("%w (group %s; let both groups catch up first: foodpipe status)", ErrAnalyticsDiffer, group)
	}
	fmt.Fprintf(env.Stdout, "the aggregates of group %s equal the orders table's for the %s it counted, to the cent\n", group, count(c.Checked, "order"))
	if c.NotCounted == 0 {
		fmt.Fprintf(env.Stdout, "group %s has counted every order in the table\n", group)
	} else {
		fmt.Fprintf(env.Stdout, "the table holds %s group %s has not counted: its lag (foodpipe status --group %s), or orders stored before it began\n",
			count(c.NotCounted, "order"), group, group)
	}
	return nil
}

// printAnalytics draws the revenue per minute as bars, then the top items
// and customers.
func printAnalytics(w io.Writer, r store.AnalyticsReport) {
	fmt.Fprintf(w, "revenue per minute (UTC) since %s, group %s\n", r.Since.Format("15:04"), safe(r.Group))
	peak := new(big.Rat)
	for _, m := range r.Minutes {
		if v, ok := new(big.Rat).SetString(m.Revenue); ok && v.Cmp(peak) > 0 {
			peak = v
		}
	}
	for _, m := range r.Minutes {
		width := 0
		if v, ok := new(big.Rat).SetString(m.Revenue); ok && peak.Sign() > 0 {
			f, _ := new(big.Rat).Quo(v, peak).Float64() // the bar's length only; the figure printed is exact
			width = int(f*40 + 0.5)
		}
		fmt.Fprintf(w, "  %s  %-40s %10s  %s\n", m.Minute.UTC().Format("15:04"), strings.Repeat("█", width), m.Revenue, count(m.Orders, "order"))
	}
	if len(r.Minutes) == 0 {
		fmt.Fprintln(w, "  (no orders in these minutes)")
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\ntop items\tquantity\trevenue")
	for _, it := range r.TopItems {
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", safe(it.Item), it.Quantity, it.Revenue)
	}
	fmt.Fprintln(tw, "\ntop customers\torders\tspent\tlast order (UTC)")
	for _, c := range r.TopCustomers {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\n", safe(c.CustomerID), c.Orders, c.Spent, c.LastOrderAt.UTC().Format(time.DateTime))
	}
	_ = tw.Flush() // a report that cannot be written has nowhere to say so
}
