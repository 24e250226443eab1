package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/telemetry"
)

// runHealth asks a running produce or consume for its health, over the
// METRICS_ADDR server, and exits non-zero unless it answers 2xx. It exists for
// container health checks: the distroless image has no shell and no curl.
func runHealth(ctx context.Context, env *Env, args []string) error {
	f, err := newFlags(env, "health")
	if err != nil {
		return err
	}
	path := f.String("path", "/healthz", "the endpoint to ask: /healthz (alive) or /readyz (ready for work)")
	timeout := f.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	f.bind("metrics-addr", config.MetricsAddr)
	f.bind("metrics-addr-file", config.MetricsAddrFile)
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	if cfg.MetricsAddrFile != "" {
		// The address the server took (METRICS_ADDR's port 0 made it pick).
		b, err := os.ReadFile(cfg.MetricsAddrFile)
		if err != nil {
			return fmt.Errorf("%s: %w", config.MetricsAddrFile.Name, err)
		}
		cfg.MetricsAddr = strings.TrimSpace(string(b))
	}
	if cfg.MetricsAddr == "" {
		return fmt.Errorf("%w: METRICS_ADDR is empty: there is no health endpoint to ask", ErrUsage)
	}
	if !strings.HasPrefix(*path, "/") {
		return fmt.Errorf("%w: --path must start with /", ErrUsage)
	}
	url, err := telemetry.HealthURL(cfg.MetricsAddr, *path)
	if err != nil {
		return fmt.Errorf("%s: %w", config.MetricsAddr.Name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	status, err := telemetry.AskHealth(ctx, url)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s %s\n", url, status)
	return nil
}
