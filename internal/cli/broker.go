package cli

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/kafka"
	"foodpipe/internal/wire"
)

func runBroker(ctx context.Context, env *Env, args []string) error {
	f, err := newFlags(env, "broker")
	if err != nil {
		return err
	}
	listen := f.String("listen", "127.0.0.1:9092", "host:port to listen on; clients must reach this exact address")
	dataDir := f.String("data-dir", "", "keep topics, messages, offsets and groups in this directory across restarts")
	noTopics := f.Bool("no-topics", false, "do not create the orders and dead-letter topics at start")
	f.bind("log-level", config.LogLevel)
	f.bind("session-timeout", config.ConsumerSessionTimeout)
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	env.followOnOneProcessor()
	// Under KIP-848 the broker sets a group's session timeout: the
	// embedded one takes CONSUMER_SESSION_TIMEOUT, so that the setting
	// means the same under both group protocols.
	b, err := kafka.StartBroker(kafka.BrokerOptions{Listen: *listen, DataDir: *dataDir, GroupSessionTimeout: cfg.SessionTimeout})
	if err != nil {
		return err
	}
	defer b.Close()
	cfg.Brokers = []string{b.Addr()}
	if !*noTopics {
		cl, err := kgo.NewClient(kafka.ClientOpts(wire.KafkaOptions(cfg, env.Log))...)
		if err != nil {
			return err
		}
		err = wire.PrepareTopics(ctx, cl, cfg, env.Log)
		cl.Close()
		if err != nil {
			return err
		}
	}
	env.Log.Info("broker listening", slog.String("addr", b.Addr()), slog.String("data_dir", *dataDir))
	fmt.Fprintf(env.Stderr, "foodpipe broker listening on %s (Ctrl-C to stop)\n", b.Addr())
	<-ctx.Done()
	env.Log.Info("broker stopping")
	return nil
}
