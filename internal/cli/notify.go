package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"foodpipe/internal/config"
	"foodpipe/internal/consumer"
	"foodpipe/internal/mail"
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
			group: func(c config.Config) string { return c.NotifyGroup },
			sink: func(st *store.Store, cfg config.Config, m *telemetry.Metrics) (consumer.Store, error) {
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
	return show(env, *asJSON, in, func(w io.Writer, in mail.Inbox) { report.PrintInbox(w, in, *last) })
}
