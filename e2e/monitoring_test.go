package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"foodpipe/deploy/monitoring"

	"foodpipe/internal/harness"
)

// prometheus is a Prometheus server run by a test, with its own storage.
type prometheus struct {
	addr string
	out  *harness.LogBuffer
}

// startPrometheus runs Debian's prometheus on a free loopback port with the
// configuration of deploy/monitoring/prometheus.yml (its job names, its
// alerts) but scraping the given targets by job, every second, and
// evaluating the rules every second, so that a condition shows as a pending
// alert within seconds. The alerts' own for: durations are left as they are.
func startPrometheus(t *testing.T, targets map[string]string) *prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus not found (%v): install Debian's prometheus package (apt-get install prometheus); scripts/test-deps, which make test runs first, does", err)
	}
	b, err := os.ReadFile(filepath.Join("..", "deploy", "monitoring", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Global        map[string]any   `json:"global"`
		RuleFiles     []string         `json:"rule_files"`
		ScrapeConfigs []map[string]any `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	alerts, err := filepath.Abs(filepath.Join("..", "deploy", "monitoring", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Global = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	cfg.RuleFiles = []string{alerts}
	jobs := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		job, _ := sc["job_name"].(string)
		target, ok := targets[job]
		if !ok {
			continue
		}
		jobs[job] = true
		// The test's processes are on loopback ports, not behind a
		// service name Docker's DNS would answer.
		delete(sc, "dns_sd_configs")
		sc["static_configs"] = []any{map[string]any{"targets": []string{target}}}
	}
	for job := range targets {
		if !jobs[job] {
			t.Fatalf("deploy/monitoring/prometheus.yml has no job %q", job)
		}
	}
	dir := t.TempDir()
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, out, 0o644); err != nil {
		t.Fatal(err)
	}
	p := &prometheus{addr: freeAddr(t), out: &harness.LogBuffer{}}
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+p.addr)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("--- prometheus output (last 8 KB):\n%s", tail(p.out.String(), 8192))
		}
	})
	eventually(t, 30*time.Second, "prometheus to be ready", func() bool {
		resp, err := http.Get("http://" + p.addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// api GETs a path of Prometheus's HTTP API and decodes its data; an answer
// whose status is not success is an error.
func (p *prometheus) api(path string, query url.Values, data any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+path+"?"+query.Encode(), nil)
	if err != nil {
		return fmt.Errorf("prometheus api: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("prometheus api: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("prometheus api %s: %w", path, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("prometheus api %s: %s", path, body.Error)
	}
	if err := json.Unmarshal(body.Data, data); err != nil {
		return fmt.Errorf("prometheus api %s: %w", path, err)
	}
	return nil
}

// query evaluates expr now and returns the number of series in the result.
func (p *prometheus) query(expr string) (int, error) {
	var data struct {
		Result []json.RawMessage `json:"result"`
	}
	if err := p.api("/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return 0, fmt.Errorf("%s: %w", expr, err)
	}
	return len(data.Result), nil
}

type activeAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

// alerts returns the active (pending or firing) alerts.
func (p *prometheus) alerts(t *testing.T) []activeAlert {
	t.Helper()
	var data struct {
		Alerts []activeAlert `json:"alerts"`
	}
	if err := p.api("/api/v1/alerts", nil, &data); err != nil {
		t.Fatal(err)
	}
	return data.Alerts
}

func findAlert(alerts []activeAlert, name string) *activeAlert {
	for i, a := range alerts {
		if a.Labels["alertname"] == name {
			return &alerts[i]
		}
	}
	return nil
}

// Debian's Prometheus scrapes a running consumer and producer with the
// compose stack's configuration: every metric the dashboard and the alerts
// use is there, every one of their queries runs, every rule evaluates
// cleanly, and cutting the consumer's database makes the breaker alert go
// pending (and go away once the database is back).
func TestPrometheusScrapesFoodpipeAndAlertsOnTheBreaker(t *testing.T) {
	p := newPipeline(t)
	proxy := newCutProxy(t, "127.0.0.1:5432")
	viaProxy := append([]string{}, p.env...)
	viaProxy[1] = "DATABASE_URL=" + strings.Replace(p.db, "127.0.0.1:5432", proxy.Addr(), 1)

	consumerMetrics, producerMetrics, exporterMetrics := freeAddr(t), freeAddr(t), freeAddr(t)
	start(t, "consumer", append(viaProxy, "METRICS_ADDR="+consumerMetrics), "consume", "--id", "c1")
	start(t, "producer", append(p.env, "METRICS_ADDR="+producerMetrics), "produce", "--rate", "50", "--duration", "5m")
	start(t, "exporter", append(p.env, "METRICS_ADDR="+exporterMetrics), "exporter")
	prom := startPrometheus(t, map[string]string{"consumer": consumerMetrics, "producer": producerMetrics, "exporter": exporterMetrics})

	eventually(t, 30*time.Second, "prometheus to scrape the consumer, the producer and the exporter", func() bool {
		n, err := prom.query(`up{job=~"consumer|producer|exporter"} == 1`)
		return err == nil && n == 3
	})
	eventually(t, 30*time.Second, "the first orders to be stored", func() bool { return storedCount(t, p.db) > 0 })

	metrics, err := monitoring.AllMetrics()
	if err != nil {
		t.Fatal(err)
	}
	// Histograms and counters appear with the first orders; give the
	// scrapes a little time to catch up before naming what is missing.
	var missing []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing = missing[:0]
		for _, m := range metrics {
			if n, err := prom.query("count(" + m + ")"); err != nil || n == 0 {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if len(missing) > 0 {
		t.Errorf("the dashboard and alerts use metrics Prometheus does not have from a running foodpipe: %v", missing)
	}
	t.Logf("all %d metrics of the dashboard and the alerts scraped: %v", len(metrics), metrics)

	qs, err := monitoring.Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if _, err := prom.query(q.Expr); err != nil {
			t.Errorf("%s: %v", q.Where, err)
		}
	}

	// Every rule has been evaluated without an error.
	type ruleState struct {
		Name      string `json:"name"`
		Health    string `json:"health"`
		LastError string `json:"lastError"`
	}
	var rules struct {
		Groups []struct {
			Rules []ruleState `json:"rules"`
		} `json:"groups"`
	}
	eventually(t, 10*time.Second, "the rules to be evaluated", func() bool {
		if err := prom.api("/api/v1/rules", nil, &rules); err != nil || len(rules.Groups) == 0 {
			return false
		}
		return !slices.ContainsFunc(rules.Groups[0].Rules, func(r ruleState) bool { return r.Health == "unknown" })
	})
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health != "ok" {
				t.Errorf("rule %s: health %s %s", r.Name, r.Health, r.LastError)
			}
		}
	}
	if f, _ := monitoring.Alerts(); n != len(f.Groups[0].Rules) {
		t.Errorf("prometheus loaded %d rules, alerts.yml has %d", n, len(f.Groups[0].Rules))
	}

	// While the pipeline works, neither the breaker nor the consumer-down
	// alert is active. (Right after Prometheus starts, before its first
	// scrape, absent(up{job="consumer"}) holds and FoodpipeConsumerDown is
	// pending for a few evaluations: its for: 2m is what keeps that from
	// paging anyone. So this waits for the first evaluations to pass.)
	eventually(t, 20*time.Second, "no breaker or consumer-down alert while the pipeline works", func() bool {
		active := prom.alerts(t)
		return findAlert(active, "FoodpipeDatabaseBreakerOpen") == nil && findAlert(active, "FoodpipeConsumerDown") == nil
	})
	if breaker := findAlert(prom.alerts(t), "FoodpipeDatabaseBreakerOpen"); breaker != nil {
		t.Fatalf("the breaker alert is %s before the database was cut", breaker.State)
	}

	proxy.Cut()
	var breaker *activeAlert
	eventually(t, 60*time.Second, "FoodpipeDatabaseBreakerOpen to become active after the database was cut", func() bool {
		breaker = findAlert(prom.alerts(t), "FoodpipeDatabaseBreakerOpen")
		return breaker != nil
	})
	// for: 1m holds it pending first: one scrape of an open breaker does
	// not page anyone.
	if breaker.State != "pending" || breaker.Labels["job"] != "consumer" || breaker.Labels["instance"] != consumerMetrics || breaker.Labels["severity"] != "critical" {
		t.Errorf("breaker alert %s %v, want pending for job consumer, instance %s, severity critical", breaker.State, breaker.Labels, consumerMetrics)
	}

	proxy.Mend()
	eventually(t, 60*time.Second, "FoodpipeDatabaseBreakerOpen to clear once the database is back", func() bool {
		return findAlert(prom.alerts(t), "FoodpipeDatabaseBreakerOpen") == nil
	})
}
