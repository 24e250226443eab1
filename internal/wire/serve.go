package wire

import (
	"context"
	"log/slog"

	"foodpipe/internal/config"
	"foodpipe/internal/telemetry"
)

// ServeMetrics serves /metrics, /healthz and /readyz (ready answers it) on
// cfg's METRICS_ADDR; with no address it serves nothing. The returned func
// stops the server.
func ServeMetrics(cfg config.Config, m *telemetry.Metrics, ready func(context.Context) error, log *slog.Logger) (stop func(), err error) {
	if cfg.MetricsAddr == "" {
		return func() {}, nil
	}
	srv, err := telemetry.Listen(cfg.MetricsAddr, m, ready, log)
	if err != nil {
		return nil, err
	}
	return func() { _ = srv.Close() }, nil
}
