package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"foodpipe/deploy/monitoring"
)

// What the compose test needs for the monitoring profile: Prometheus's
// configuration on the host's network, the targets it scrapes, and what it
// says of them and of the rules.

// consumerAddrFile is where each consumer replica writes the address of its
// metrics server (METRICS_ADDR_FILE in e2e/testdata/compose.hostnet.yml),
// inside its container.
const consumerAddrFile = "/tmp/foodpipe-metrics-addr"

// composePrometheus writes, in dir, deploy/monitoring/prometheus.yml with
// each job's targets read from dir/targets/JOB.json (on the host's network
// Docker's DNS answers no service name), scraped and evaluated every 2 s;
// every job and rule file is kept as it is. It returns the jobs whose
// targets the test writes: all but Prometheus's own.
func composePrometheus(t *testing.T, dir, promAddr string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", "monitoring", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["global"] = map[string]any{"scrape_interval": "2s", "evaluation_interval": "2s"}
	var jobs []string
	scrapes, _ := cfg["scrape_configs"].([]any)
	for _, s := range scrapes {
		job := s.(map[string]any)
		name := job["job_name"].(string)
		delete(job, "dns_sd_configs")
		delete(job, "static_configs")
		if name == "prometheus" {
			job["static_configs"] = []any{map[string]any{"targets": []any{promAddr}}}
			continue
		}
		jobs = append(jobs, name)
		job["file_sd_configs"] = []any{map[string]any{"files": []any{"/etc/prometheus/targets/" + name + ".json"}, "refresh_interval": "2s"}}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "targets"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "prometheus.yml"), string(out))
	return jobs
}

// metricsServices lists the services of the stack, with the monitoring
// profile, that serve metrics: those whose environment sets METRICS_ADDR.
func metricsServices(t *testing.T, c *compose) []string {
	t.Helper()
	var cfg struct {
		Services map[string]struct {
			Environment map[string]*string `json:"environment"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(c.must(t, time.Minute, "--profile", "monitoring", "config", "--format", "json")), &cfg); err != nil {
		t.Fatalf("compose config: %v", err)
	}
	var out []string
	for name, s := range cfg.Services {
		if _, ok := s.Environment["METRICS_ADDR"]; ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// writeTargets writes the targets file of each job.
func writeTargets(t *testing.T, dir string, targets map[string][]string) {
	t.Helper()
	for job, addrs := range targets {
		b, err := json.Marshal([]map[string]any{{"targets": addrs}})
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "targets", job+".json"), string(b))
	}
}

// consumerMetricsAddr reads the address a consumer container's metrics
// server took, from the file it wrote in its own root file system.
func consumerMetricsAddr(d *dockerd, id string) string {
	pid, err := d.docker(context.Background(), "inspect", "--format", "{{.State.Pid}}", id)
	if err != nil || pid == "0" {
		return ""
	}
	b, err := os.ReadFile(filepath.Join("/proc", pid, "root", consumerAddrFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// targetsUp counts Prometheus's active targets by job: all of them, and
// those up.
func (p *prometheus) targetsUp() (up, all map[string]int) {
	var data struct {
		ActiveTargets []struct {
			Labels map[string]string `json:"labels"`
			Health string            `json:"health"`
		} `json:"activeTargets"`
	}
	up, all = map[string]int{}, map[string]int{}
	if err := p.api("/api/v1/targets", map[string][]string{"state": {"active"}}, &data); err != nil {
		return up, all
	}
	for _, tg := range data.ActiveTargets {
		all[tg.Labels["job"]]++
		if tg.Health == "up" {
			up[tg.Labels["job"]]++
		}
	}
	return up, all
}

// ruleStates returns each alerting rule Prometheus loaded, by name, with its
// state: inactive, pending or firing.
func (p *prometheus) ruleStates(t *testing.T) map[string]string {
	t.Helper()
	var data struct {
		Groups []struct {
			Rules []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				State string `json:"state"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.api("/api/v1/rules", nil, &data); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			if r.Type == "alerting" {
				states[r.Name] = r.State
			}
		}
	}
	return states
}

// checkRulesLoaded checks that Prometheus loaded every alert of
// deploy/monitoring/alerts.yml.
func checkRulesLoaded(t *testing.T, p *prometheus) {
	t.Helper()
	want, err := monitoring.Alerts()
	if err != nil {
		t.Fatal(err)
	}
	loaded := p.ruleStates(t)
	n := 0
	for _, g := range want.Groups {
		for _, rule := range g.Rules {
			if rule.Alert == "" {
				continue
			}
			n++
			if _, ok := loaded[rule.Alert]; !ok {
				t.Errorf("Prometheus did not load alert %s (loaded %v)", rule.Alert, slices.Sorted(maps.Keys(loaded)))
			}
		}
	}
	t.Logf("Prometheus loaded %d alerting rules; alerts.yml has %d", len(loaded), n)
}

// iptablesCounters are the packet and byte counters iptables-save prints
// after each chain's policy, which traffic changes.
var iptablesCounters = regexp.MustCompile(` \[\d+:\d+\]$`)

// iptablesRules returns the host's firewall rules as iptables-save prints
// them, without its comments (which carry the time) and counters; ok is
// false, with the reason logged, where iptables-save is not installed.
func iptablesRules(t *testing.T) (rules string, ok bool) {
	t.Helper()
	bin, err := exec.LookPath("iptables-save")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/iptables-save"); serr == nil { // not on a user's PATH
			bin, err = "/usr/sbin/iptables-save", nil
		}
	}
	if err != nil {
		t.Logf("no firewall check: iptables-save is not installed (%v); scripts/test-deps installs iptables", err)
		return "", false
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save: %v\n%s", err, out)
	}
	var lines []string
	for line := range strings.Lines(string(out)) {
		if !strings.HasPrefix(line, "#") {
			lines = append(lines, iptablesCounters.ReplaceAllString(strings.TrimSpace(line), ""))
		}
	}
	return strings.Join(lines, "\n"), true
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkPrometheus checks the monitoring profile's Prometheus: each job of
// deploy/monitoring/prometheus.yml scrapes its service (every consumer
// replica, at the address it wrote), every service that serves metrics is
// some job's, every target is up, every rule of alerts.yml is loaded, and,
// with the exporter's lag scraped while the consumers store orders,
// FoodpipeConsumerNoProgress and FoodpipeExporterDown are inactive. addrs
// are the metrics addresses of the services with one replica.
func checkPrometheus(t *testing.T, c *compose, p *prometheus, dir string, jobs []string, addrs map[string]string) {
	t.Helper()
	targets := map[string][]string{}
	for _, svc := range metricsServices(t, c) {
		if !slices.Contains(jobs, svc) {
			t.Errorf("service %s serves metrics, but deploy/monitoring/prometheus.yml has no job %s (jobs %v)", svc, svc, jobs)
			continue
		}
		if svc == "consumer" {
			for _, id := range c.containers(t, "consumer") {
				addr := consumerMetricsAddr(c.d, id)
				if addr == "" {
					t.Fatalf("consumer %s wrote no metrics address to %s", id, consumerAddrFile)
				}
				targets[svc] = append(targets[svc], addr)
			}
			continue
		}
		if addrs[svc] == "" {
			t.Fatalf("service %s serves metrics; the test gives it no address", svc)
		}
		targets[svc] = []string{addrs[svc]}
	}
	for _, job := range jobs {
		if len(targets[job]) == 0 {
			t.Errorf("prometheus.yml's job %s scrapes no service of the stack that serves metrics", job)
		}
	}
	writeTargets(t, dir, targets)
	want := map[string]int{"prometheus": 1}
	for job, addrs := range targets {
		want[job] = len(addrs)
	}

	var up, all map[string]int
	eventuallyLogged(t, time.Minute, "Prometheus scraping every service, each target up",
		func() bool {
			up, all = p.targetsUp()
			return maps.Equal(up, want) && maps.Equal(all, want)
		},
		func() string {
			return fmt.Sprintf("want %v targets by job, all up; Prometheus has %v, up %v", want, all, up)
		})
	t.Logf("Prometheus scrapes %v", up)
	checkRulesLoaded(t, p)

	// The exporter's lag is in Prometheus, and the rules built on it and on
	// the exporter's target are quiet while orders are stored.
	quiet := []string{"FoodpipeConsumerNoProgress", "FoodpipeExporterDown"}
	var states map[string]string
	eventuallyLogged(t, time.Minute, "the exporter's lag scraped and "+strings.Join(quiet, " and ")+" inactive",
		func() bool {
			n, err := p.query(`foodpipe_group_lag{job="exporter", component="consumer", group="order-processors"}`)
			states = p.ruleStates(t)
			return err == nil && n == 3 && states[quiet[0]] == "inactive" && states[quiet[1]] == "inactive"
		},
		func() string { return fmt.Sprintf("alert states %v", states) })
	for name, state := range states {
		if state == "firing" {
			t.Errorf("alert %s firing while the stack works", name)
		}
	}
}

// eventuallyLogged is eventually that, when the time is up, also says what
// it saw last.
func eventuallyLogged(t *testing.T, limit time.Duration, what string, cond func() bool, seen func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", limit, what, seen())
		}
		time.Sleep(250 * time.Millisecond)
	}
}
