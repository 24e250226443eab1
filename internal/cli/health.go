package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"foodpipe/internal/config"
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
	cfg, err := f.parse(args)
	if err != nil {
		return err
	}
	if cfg.MetricsAddr == "" {
		return fmt.Errorf("%w: METRICS_ADDR is empty: there is no health endpoint to ask", ErrUsage)
	}
	if !strings.HasPrefix(*path, "/") {
		return fmt.Errorf("%w: --path must start with /", ErrUsage)
	}
	host, port, err := net.SplitHostPort(cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("%s: %w", config.MetricsAddr.Name, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1" // the server listens on every interface; ask it locally
	}
	url := "http://" + net.JoinHostPort(host, port) + *path
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health %s: %w", url, err)
	}
	_ = resp.Body.Close() // the body is read; closing it cannot fail in a way that matters here
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("health %s: %s", url, resp.Status)
	}
	fmt.Fprintf(env.Stdout, "%s %s\n", url, resp.Status)
	return nil
}
