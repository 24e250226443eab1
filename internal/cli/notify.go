package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"foodpipe/internal/config"
	"foodpipe/internal/consumer"
	"foodpipe/internal/mail"
	"foodpipe/internal/notify"
	"foodpipe/internal/report"
	"foodpipe/internal/store"
	"foodpipe/internal/telemetry"
	"foodpipe/internal/wire"
)

// runNotify runs a member of the notifications group (the default), or
// shows what the mail server received.
func runNotify(ctx context.Context, env *Env, args []string) error {
	sub := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "run":
		return runMember(ctx, env, "notify", args, member{groupVar: config.KafkaNotifyGroup,
			group:    func(c config.Config) string { return c.NotifyGroup },
			batchVar: config.NotifyBatchSize, batch: func(c config.Config) int { return c.NotifyBatchSize },
			flags: map[string]*config.Var{"smtp-url": config.SMTPURL, "mail-api-url": config.MailAPIURL},
			sink: func(st *store.Store, cfg config.Config, m *telemetry.Metrics) (consumer.Store, error) {
				if cfg.StatsInterval > 0 {
					go notify.WatchReceiver(ctx, cfg.MailAPIURL, cfg.StatsInterval, m, env.Log)
				}
				return wire.NotifyStore(cfg, st, m, env.Log)
			}})
	case "inbox":
	default:
		return fmt.Errorf("%w: foodpipe notify [run|inbox] [flags]", ErrUsage)
	}
	f, err := newFlags(env, "notify inbox")
	if err != nil {
		return err
	}
	f.dbFlags()
	f.bind("group", config.KafkaNotifyGroup)
	f.bind("mail-api-url", config.MailAPIURL)
	last := f.Int("last", 5, "how many of the newest emails to list")
	asJSON := f.Bool("json", false, "print the whole inbox as one JSON object")
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	if *last < 0 {
		return fmt.Errorf("%w: --last must be 0 or more", ErrUsage)
	}
	in, err := mail.ReadInbox(ctx, cfg.MailAPIURL)
	if err != nil {
		return err
	}
	v := report.Inbox{Inbox: in, Group: cfg.NotifyGroup}
	// What the group recorded, beside what arrived: the sends in doubt are
	// the most duplicates the receiver can hold.
	if st, err := wire.OpenStore(ctx, cfg, false); err != nil {
		v.DBErr = err.Error()
	} else {
		defer st.Close()
		c, err := st.Notifications().CountNotices(ctx, cfg.NotifyGroup, nil)
		if err != nil {
			v.DBErr = err.Error()
		} else {
			v.Recorded = &c
		}
	}
	return show(env, *asJSON, v, func(w io.Writer, v report.Inbox) { report.PrintInbox(w, v, *last) })
}
