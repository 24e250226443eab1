package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/inspect"
	"foodpipe/internal/kafka"
	"foodpipe/internal/telemetry"
	"foodpipe/internal/wire"
)

// exporterScrape bounds one scrape's look at the broker, inside Prometheus's
// default scrape timeout of 10 s.
const exporterScrape = 8 * time.Second

// runExporter serves the lag of foodpipe's groups as the broker sees it, for
// Prometheus, until stopped. It needs no database and no member of any group:
// it is what still reports the lag when every consumer is down. A broker that
// does not answer is no reason to exit: each scrape tries again and says so
// (foodpipe_group_lag_up 0), and /readyz answers 503 meanwhile.
func runExporter(ctx context.Context, env *Env, args []string) error {
	f, err := newFlags(env, "exporter")
	if err != nil {
		return err
	}
	f.kafkaFlags()
	f.bind("group", config.KafkaGroup)
	f.bind("analytics-group", config.KafkaAnalyticsGroup)
	f.bind("notify-group", config.KafkaNotifyGroup)
	f.bind("metrics-addr", config.MetricsAddr)
	f.bind("metrics-addr-file", config.MetricsAddrFile)
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	env.followOnOneProcessor()
	if cfg.MetricsAddr == "" {
		return fmt.Errorf("%w: %s is empty: the exporter needs an address to serve its metrics on, such as :9308", ErrUsage, config.MetricsAddr.Name)
	}
	// No ping at the start: the client connects at the first scrape.
	cl, err := kgo.NewClient(kafka.ClientOpts(wire.KafkaOptions(cfg, env.Log))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	groups := []inspect.LagGroup{{Group: cfg.Group, Component: "consumer"}, {Group: cfg.AnalyticsGroup, Component: "analytics"},
		{Group: cfg.NotifyGroup, Component: "notify"}}
	reg := telemetry.NewRegistry()
	reg.MustRegister(&inspect.LagCollector{Admin: kadm.NewClient(cl), Topic: cfg.Topic, Groups: groups, Timeout: exporterScrape, Log: env.Log})
	stop, err := wire.ServeMetrics(cfg, reg, func(ctx context.Context) error { return cl.Ping(ctx) }, env.Log)
	if err != nil {
		return err
	}
	defer stop()
	env.Log.Info("exporter serving the groups' lag from the broker", slog.String("topic", cfg.Topic), slog.Any("groups", groups),
		slog.String("addr", cfg.MetricsAddr))
	<-ctx.Done()
	return nil
}
