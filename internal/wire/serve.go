package wire

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"foodpipe/internal/config"
	"foodpipe/internal/telemetry"
)

// ServeMetrics serves /metrics, /healthz and /readyz (ready answers it) on
// cfg's METRICS_ADDR; with no address it serves nothing. The returned func
// stops the server.
func ServeMetrics(cfg config.Config, reg *prometheus.Registry, ready func(context.Context) error, log *slog.Logger) (stop func(), err error) {
	if cfg.MetricsAddr == "" {
		return func() {}, nil
	}
	srv, err := telemetry.Listen(cfg.MetricsAddr, reg, ready, log)
	if err != nil {
		return nil, err
	}
	if cfg.MetricsAddrFile != "" {
		// Written whole, then renamed: a health check never reads half an
		// address.
		tmp := cfg.MetricsAddrFile + ".tmp"
		err := os.WriteFile(tmp, []byte(srv.Addr()+"\n"), 0o600) // read by foodpipe health, the same user
		if err == nil {
			err = os.Rename(tmp, cfg.MetricsAddrFile)
		}
		if err != nil {
			_ = srv.Close()
			return nil, fmt.Errorf("%s: %w", config.MetricsAddrFile.Name, err)
		}
	}
	return func() { _ = srv.Close() }, nil
}
