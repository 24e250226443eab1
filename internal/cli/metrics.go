package cli

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"foodpipe/internal/config"
	"foodpipe/internal/telemetry"
)

// serveMetrics serves /metrics, /healthz and /readyz on METRICS_ADDR; with
// no address it serves nothing. The returned func stops the server.
func serveMetrics(cfg config.Config, m *telemetry.Metrics, ready func(context.Context) error, log *slog.Logger) (func(), error) {
	if cfg.MetricsAddr == "" {
		return func() {}, nil
	}
	srv, err := telemetry.Listen(cfg.MetricsAddr, m, ready, log)
	if err != nil {
		return nil, err
	}
	return func() { _ = srv.Close() }, nil
}

// kafkaMetrics adds the Kafka client's own metrics (connections, bytes,
// request latency, buffered records) to m's registry, labelled with the
// client id so that several clients in one process stay apart.
func kafkaMetrics(m *telemetry.Metrics) kgo.Opt {
	return kgo.WithHooks(kafkaHook(m))
}

// kafkaHook is kafkaMetrics as a hook, for a client made later (the
// consumer makes one per session in its group).
func kafkaHook(m *telemetry.Metrics) kgo.Hook {
	return kprom.NewMetrics("foodpipe", kprom.Subsystem("kafka"), kprom.Registry(m.Registry), kprom.WithClientLabel())
}
