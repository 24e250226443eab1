package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/kafka"
	"foodpipe/internal/semantics"
	"foodpipe/internal/wire"
)

// runTeach runs one member of a teaching group (package semantics) until it
// is stopped: a process of its own, so that `demo --semantics` and the tests
// can kill it for real.
func runTeach(ctx context.Context, env *Env, args []string) error {
	f, err := newFlags(env, "teach")
	if err != nil {
		return err
	}
	f.kafkaFlags()
	f.dbFlags()
	f.bind("batch-size", config.ConsumerBatchSize)
	f.bind("migrate", config.DBMigrate)
	name := f.String("semantics", "", fmt.Sprintf("the group to join: %s (commit, then write) or %s (write, then commit)", semantics.AtMostOnce, semantics.AtLeastOnce))
	id := f.memberID("this member's name in its group and in logs; restarted with the same id, it takes its place back at once")
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	s, err := semantics.Parse(*name)
	if err != nil {
		return fmt.Errorf("%w: --semantics: %w", ErrUsage, err)
	}
	st, err := wire.OpenStore(ctx, cfg, cfg.Migrate)
	if err != nil {
		return stoppedOr(ctx, err)
	}
	defer st.Close()
	base := append(kafka.ClientOpts(wire.KafkaOptions(cfg, env.Log)), kgo.ClientID(cfg.ClientID+"-"+*id))
	if err := prepareTeachingGroup(ctx, base, cfg, semantics.Group(s), env); err != nil {
		return stoppedOr(ctx, err)
	}
	m, err := semantics.New(base, st.Pool(), semantics.Config{Semantics: s, ID: *id, Topic: cfg.Topic, BatchSize: cfg.BatchSize,
		SessionTimeout: cfg.SessionTimeout, FetchMaxWait: cfg.FetchMaxWait, GroupProtocol: cfg.GroupProtocol}, env.Log)
	if err != nil {
		return err
	}
	env.Log.Info("teaching member starting", slog.String("member", *id), slog.String("semantics", string(s)),
		slog.String("group", semantics.Group(s)), slog.String("table", semantics.Table(s)))
	return m.Run(ctx)
}

// prepareTeachingGroup gives a teaching group, under KIP-848, the session
// timeout its members are configured with, as the pipeline's group is
// given its own (wire.PrepareGroup).
func prepareTeachingGroup(ctx context.Context, base []kgo.Opt, cfg config.Config, group string, env *Env) error {
	if cfg.GroupProtocol != config.GroupProtocolConsumer {
		return nil
	}
	cl, err := kgo.NewClient(base...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	cfg.Group = group
	wire.PrepareGroup(ctx, cl, cfg, env.Log)
	return nil
}
