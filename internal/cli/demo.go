package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/demo"
	"foodpipe/internal/report"
)

// demoDatabase is the database the demo uses, and empties, on the local
// PostgreSQL server (or a temporary one) when DATABASE_URL is not set.
var demoDatabase = "foodpipe_demo"

// runDemo runs the demo (see demo.Run), draws its events in its live view
// (demo.View) and prints its summary.
func runDemo(ctx context.Context, env *Env, args []string) error {
	f, err := newFlags(env, "demo")
	if err != nil {
		return err
	}
	orders := f.Int("orders", 100, "how many orders to produce")
	f.bind("rate", config.ProducerRate)
	consumers := f.Int("consumers", 2, "consumers in the group (more than the partitions leaves some idle)")
	asJSON := f.Bool("json", false, "print the summary as one JSON object on stdout")
	wait := f.Duration("wait", 30*time.Second, "how long to wait for the last orders to be stored after producing")
	analytics := f.Bool("analytics", false, "also run an analytics member, a second group reading the same topic, and check its aggregates")
	notify := f.Bool("notify", false, "also run a notifier, a third group reading the same topic, that emails each customer: to SMTP_URL's mail server when it is set, else to a Mailpit the demo starts")
	stopOneAfter := f.Int("stop-one-after", 0, "stop one consumer once this many orders are produced, to watch its partitions move (0: never)")
	sem := f.Bool("semantics", false, "run the three delivery semantics side by side instead (at most once, at least once, the pipeline's exactly-once effect), a member of each killed at its crash point, and count what each group lost and doubled")
	f.bind("partitions", config.KafkaPartitions)
	f.bind("group-protocol", config.ConsumerGroupProtocol)
	userDB, err := f.ownPipelineFlags()
	if err != nil {
		return err
	}
	lookup, err := env.lookup()
	if err != nil {
		return err
	}
	_, userSMTP := lookup(config.SMTPURL.Name)
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	if *orders < 1 || *consumers < 1 || *consumers > 64 {
		return fmt.Errorf("%w: --orders must be at least 1 and --consumers from 1 to 64", ErrUsage)
	}
	if *stopOneAfter < 0 || *stopOneAfter > 0 && *consumers < 2 {
		return fmt.Errorf("%w: --stop-one-after needs at least 2 consumers and must not be negative", ErrUsage)
	}
	if *sem {
		if *analytics || *notify || *stopOneAfter > 0 {
			return fmt.Errorf("%w: --semantics runs a member of each group on its own: not with --analytics, --notify or --stop-one-after", ErrUsage)
		}
		return runDemoSemantics(ctx, env, cfg, userDB(), *orders, *wait, *asJSON)
	}
	out := env.Stdout
	if *asJSON {
		out = env.Stderr
	}
	tty := env.terminal(out)
	view := demo.NewView(out, tty, *orders)
	o := demo.Options{Config: cfg, UserDatabase: userDB(), DBName: demoDatabase,
		Orders: *orders, Consumers: *consumers, Wait: *wait, Analytics: *analytics, StopOneAfter: *stopOneAfter, Notify: *notify}
	if *notify {
		// The user's mail server when SMTP_URL names one, as DATABASE_URL
		// names the user's database; else a Mailpit of the demo's own.
		if userSMTP {
			o.SMTPURL, o.MailAPIURL = cfg.SMTPURL, cfg.MailAPIURL
		} else {
			dir, err := os.MkdirTemp("", "foodpipe-demo-mail-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			o.TempDir = dir
		}
	}
	// On a terminal the live view is redrawn in place: the Kafka clients'
	// own lines stay off it (Env.clientLog).
	o.Log, o.ClientLog, o.Observe = env.Log, env.clientLog(tty), view.Observe
	s, err := demo.Run(ctx, o)
	view.Close()
	if err != nil {
		return err
	}
	if err := show(env, *asJSON, s, report.PrintSummary); err != nil {
		return err
	}
	return demo.Judge(s, *orders)
}

// runDemoSemantics runs `demo --semantics` (demo.Semantics) and prints what
// each group lost and doubled.
func runDemoSemantics(ctx context.Context, env *Env, cfg config.Config, userDB bool, orders int, wait time.Duration, asJSON bool) error {
	s, err := demo.Semantics(ctx, demo.SemanticsOptions{Config: cfg, UserDatabase: userDB, DBName: demoDatabase,
		Orders: orders, Wait: wait, Log: env.Log, ClientLog: env.clientLog(false)})
	if err != nil {
		return err
	}
	if err := show(env, asJSON, s, report.PrintSemantics); err != nil {
		return err
	}
	return demo.JudgeSemantics(s)
}
