package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"foodpipe/internal/config"
	"foodpipe/internal/inspect"
	"foodpipe/internal/kafka"
	"foodpipe/internal/report"
	"foodpipe/internal/store"
	"foodpipe/internal/wire"
)

func runStatus(ctx context.Context, env *Env, args []string) error {
	f, err := newFlags(env, "status")
	if err != nil {
		return err
	}
	f.kafkaFlags()
	f.dbFlags()
	f.bind("group", config.KafkaGroup)
	f.bind("dlq-topic", config.KafkaDLQTopic)
	watch := f.Bool("watch", false, "redraw every --interval until interrupted")
	every := f.Duration("interval", 2*time.Second, "how often --watch redraws")
	asJSON := f.Bool("json", false, "print the status as one JSON object")
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	if *every <= 0 {
		return fmt.Errorf("%w: --interval must be positive", ErrUsage)
	}
	// The status is worth showing without the database: its absence is
	// reported in place of the row counts.
	st, dbErr := wire.OpenStore(ctx, cfg, false)
	if dbErr == nil {
		defer st.Close()
	}
	if *watch {
		return watchStatus(ctx, env, cfg, st, dbErr, *every, *asJSON)
	}
	adm, closeAdm, err := wire.Admin(ctx, cfg, env.Log)
	if err != nil {
		return err
	}
	defer closeAdm()
	s, err := readStatus(ctx, adm, st, dbErr, cfg)
	if err != nil {
		return err
	}
	return show(env, *asJSON, s, report.PrintStatus)
}

// watchRound bounds one look of status --watch: a broker that takes no
// packets at all would otherwise hold the view until the client's retries
// are spent.
const watchRound = 5 * time.Second

// watchStatus shows the status every interval until ctx ends, in
// report.StatusWatch: on a terminal in place, else one snapshot after
// another. A broker it cannot reach, at the start or later, is said as such
// and tried again at the next look; the Kafka client's own lines about it are
// kept off a terminal the view is drawn on (Env.clientLog).
func watchStatus(ctx context.Context, env *Env, cfg config.Config, st *store.Store, dbErr error, every time.Duration, asJSON bool) error {
	tty := env.terminal(env.Stdout)
	clientLog := env.clientLog(tty)
	var (
		adm      *kadm.Client
		closeAdm = func() {}
	)
	defer func() { closeAdm() }()
	look := func() error {
		rctx, cancel := context.WithTimeout(ctx, max(every, watchRound))
		defer cancel()
		if adm == nil {
			a, c, err := wire.Admin(rctx, cfg, clientLog)
			if err != nil {
				return err
			}
			adm, closeAdm = a, c
		}
		s, err := readStatus(rctx, adm, st, dbErr, cfg)
		if err != nil {
			return err
		}
		return show(env, asJSON, s, report.PrintStatus)
	}
	view := report.StatusWatch{W: env.Stdout, Terminal: tty, Every: every, Within: max(every, watchRound), Brokers: cfg.Brokers}
	for {
		view.Begin(time.Now())
		err := look()
		if ctx.Err() != nil {
			return nil
		}
		view.End(err, time.Now())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

// readStatus gathers the status from the brokers and, when st is open, the database.
func readStatus(ctx context.Context, adm *kadm.Client, st *store.Store, dbErr error, cfg config.Config) (report.Status, error) {
	g, err := inspect.Read(ctx, inspect.Source{Admin: adm, Store: st, Rows: true}, cfg.Topic, cfg.Group)
	if errors.Is(err, kafka.ErrNoTopic) {
		return report.Status{}, fmt.Errorf("topic %s does not exist (foodpipe topic create makes it)", cfg.Topic)
	}
	if err != nil {
		return report.Status{}, err
	}
	dlqSize, err := kafka.Messages(ctx, adm, cfg.DLQTopic)
	if err != nil {
		return report.Status{}, err
	}
	if dbErr == nil {
		dbErr = g.DBErr
	}
	var others []inspect.Group
	for _, name := range []string{cfg.Group, cfg.AnalyticsGroup, cfg.NotifyGroup} {
		if name == cfg.Group {
			continue
		}
		src := inspect.Source{Admin: adm}
		if dbErr == nil {
			src.Store = st // without it, Kafka's view alone
		}
		other, err := inspect.Read(ctx, src, cfg.Topic, name)
		if err != nil {
			return report.Status{}, err
		}
		others = append(others, other)
	}
	return report.StatusOf(g, cfg.DLQTopic, dlqSize, others, dbErr), nil
}
