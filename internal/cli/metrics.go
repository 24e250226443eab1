package cli

import (
	"context"
	"log/slog"

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
