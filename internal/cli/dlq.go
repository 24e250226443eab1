package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"foodpipe/internal/config"
	"foodpipe/internal/dlq"
	"foodpipe/internal/kafka"
	"foodpipe/internal/report"
	"foodpipe/internal/wire"
)

func runDLQ(ctx context.Context, env *Env, args []string) error {
	build := func(sub string) (*flags, error) {
		d, err := newDLQFlags(env, sub)
		if err != nil {
			return nil, err
		}
		return d.flags, nil
	}
	sub, err := subcommand(env, args, "foodpipe dlq list|replay [flags]", []string{"list", "replay"}, build)
	if err != nil {
		return err
	}
	d, err := newDLQFlags(env, sub)
	if err != nil {
		return err
	}
	cfg, err := d.parse(args[1:])
	if err != nil {
		return err
	}
	if sub == "list" {
		if *d.limit < 0 {
			return fmt.Errorf("%w: --limit must not be negative", ErrUsage)
		}
		return dlqList(ctx, env, cfg, *d.reason, *d.limit, *d.asJSON)
	}
	if *d.reason == "" && len(d.offsets) == 0 && !*d.all {
		return fmt.Errorf("%w: say which dead letters to replay: --reason R, --offset N or --all", ErrUsage)
	}
	return dlqReplay(ctx, env, cfg, *d.reason, d.offsets, *d.dry)
}

// dlqFlags are the flags of `dlq list` and `dlq replay`: --reason for both,
// then each its own.
type dlqFlags struct {
	*flags
	reason *string
	// list
	limit  *int
	asJSON *bool
	// replay
	offsets  dlq.Offsets
	all, dry *bool
}

func newDLQFlags(env *Env, sub string) (*dlqFlags, error) {
	f, err := newFlags(env, "dlq "+sub)
	if err != nil {
		return nil, err
	}
	f.kafkaFlags()
	f.bind("dlq-topic", config.KafkaDLQTopic)
	d := &dlqFlags{flags: f, reason: f.String("reason", "", "only dead letters with this reason, e.g. not_json")}
	if sub == "list" {
		d.limit = f.Int("limit", 0, "show at most this many (0: all)")
		d.asJSON = f.Bool("json", false, "one JSON object per dead letter")
		return d, nil
	}
	f.Var(&d.offsets, "offset", "replay the dead letter at this offset of the dead-letter topic (repeat or comma-separate)")
	d.all = f.Bool("all", false, "replay every dead letter")
	d.dry = f.Bool("dry-run", false, "show what would be replayed, publish nothing")
	return d, nil
}

// dlqReader reads cfg's dead-letter topic. Call the func to close its client.
func dlqReader(ctx context.Context, env *Env, cfg config.Config) (dlq.Reader, func(), error) {
	adm, closeAdm, err := wire.Admin(ctx, cfg, env.Log)
	if err != nil {
		return dlq.Reader{}, nil, err
	}
	return dlq.Reader{Base: kafka.ClientOpts(wire.KafkaOptions(cfg, env.Log)), Admin: adm, Topic: cfg.DLQTopic}, closeAdm, nil
}

func dlqList(ctx context.Context, env *Env, cfg config.Config, reason string, limit int, asJSON bool) error {
	r, done, err := dlqReader(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer done()
	dead, err := r.Chosen(ctx, reason, nil)
	if err != nil {
		return err
	}
	if limit > 0 && len(dead) > limit {
		dead = dead[:limit]
	}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		for _, d := range dead {
			if err := enc.Encode(d.Listed()); err != nil {
				return err
			}
		}
		return nil
	}
	report.PrintDeadLetters(env.Stdout, dead)
	return nil
}

// dlqReplay re-publishes chosen dead letters to the orders topic, each
// original once (see package dlq).
func dlqReplay(ctx context.Context, env *Env, cfg config.Config, reason string, offsets dlq.Offsets, dry bool) error {
	r, done, err := dlqReader(ctx, env, cfg)
	if err != nil {
		return err
	}
	defer done()
	dead, err := r.Chosen(ctx, reason, offsets)
	if err != nil {
		return err
	}
	if len(dead) == 0 {
		fmt.Fprintln(env.Stdout, "no dead letters match")
		return nil
	}
	// A replay is sent at once, not at the producer's rate.
	cfg.ProducerRate = 0
	cl, err := wire.ProducerClient(ctx, cfg, env.Log, env.Log, nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	plan, err := r.Replay(ctx, cl, cfg.Topic, dead, len(offsets) > 0, dry,
		kafka.TopicSpec{ReplicationFactor: cfg.ReplicationFactor, Retention: cfg.Retention})
	if err != nil {
		return err
	}
	report.PrintReplay(env.Stdout, plan, dry)
	return nil
}
