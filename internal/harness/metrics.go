package harness

// What a child says about itself on its METRICS_ADDR: its Prometheus
// metrics and its readiness, read the way Prometheus and Kubernetes read
// them, never from its log.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics reads the child's /metrics. It fails for a child started
// without a METRICS_ADDR, or one that does not answer (stopped, frozen).
func (p *Process) Metrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	if p.MetricsAddr == "" {
		return nil, fmt.Errorf("metrics of %s: %w", p.Name, ErrNoMetricsAddr)
	}
	resp, err := p.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", p.Name, err)
	}
	return fams, nil
}

// Ready asks the child's /readyz: true for 200, false for 503 (a consumer
// whose circuit breaker is open says 503), an error when it does not answer.
func (p *Process) Ready(ctx context.Context) (bool, error) {
	if p.MetricsAddr == "" {
		return false, fmt.Errorf("readiness of %s: %w", p.Name, ErrNoMetricsAddr)
	}
	resp, err := p.get(ctx, "/readyz")
	if err != nil {
		return false, err
	}
	_ = resp.Body.Close() // the status is the answer
	return resp.StatusCode == http.StatusOK, nil
}

func (p *Process) get(ctx context.Context, path string) (*http.Response, error) {
	// A frozen child accepts the connection (the kernel does) but never
	// answers: a short limit keeps a watcher from hanging on it.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.MetricsAddr+path, nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%s %s: %w", p.Name, path, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%s %s: %w", p.Name, path, err)
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

// cancelOnClose ends a request's time limit when its body is closed.
type cancelOnClose struct {
	body   io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Read(b []byte) (int, error) { return c.body.Read(b) }
func (c cancelOnClose) Close() error               { err := c.body.Close(); c.cancel(); return err }

// Gauge is the value of an unlabelled gauge or counter in fams, and whether
// it is there.
func Gauge(fams map[string]*dto.MetricFamily, name string) (float64, bool) {
	f, ok := fams[name]
	if !ok || len(f.GetMetric()) == 0 {
		return 0, false
	}
	m := f.GetMetric()[0]
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue(), true
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue(), true
	}
	return 0, false
}
