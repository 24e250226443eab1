package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"

	"foodpipe/deploy/monitoring"
)

// composeProjectName is the test's compose project: its containers, volumes
// and networks are named after it, in the test's own daemon.
const composeProjectName = "foodpipe-e2e"

// consumerAddrFile is where each consumer replica writes the address of its
// metrics server (METRICS_ADDR_FILE), inside its container.
const consumerAddrFile = "/tmp/foodpipe-metrics-addr"

// compose runs `docker compose` on the stack's files and the test's override.
type compose struct {
	d     *dockerd
	files []string
}

func (c *compose) run(ctx context.Context, args ...string) (string, error) {
	full := []string{"compose", "--project-name", composeProjectName}
	for _, f := range c.files {
		full = append(full, "--file", f)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, c.d.cli, full...)
	cmd.Dir = ".." // the repository, where the stack's files are, as a user runs it
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+c.d.host)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %w\n%s", strings.Join(full, " "), err, tail(string(out), 8192))
	}
	return strings.TrimSpace(string(out)), nil
}

// must runs compose within limit and fails the test on an error.
func (c *compose) must(t *testing.T, limit time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	out, err := c.run(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// containers lists the ids of a service's containers (running or not).
func (c *compose) containers(t *testing.T, service string) []string {
	t.Helper()
	out := c.must(t, time.Minute, "ps", "--all", "--quiet", service)
	return strings.Fields(out)
}

// requireCompose fails the test unless the docker client has the compose
// plugin scripts/test-deps builds.
func requireCompose(t *testing.T, cli string) {
	t.Helper()
	out, err := exec.Command(cli, "compose", "version").CombinedOutput()
	if err != nil {
		t.Fatalf("the compose test needs `%s compose` (Docker Compose v2 as a CLI plugin); scripts/test-deps builds it "+
			"from its Go module, or set %s=1 to skip the Docker tests: %v\n%s", cli, EnvNoDocker, err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}

// `docker compose up` for real, on the test's own daemon (no bridge: every
// container on the host's network, each on ports the test picks), with the
// small-machine stack's embedded broker in Kafka's place and PostgreSQL and
// Prometheus built from Debian's packages: the stack comes up healthy, stores
// 100 orders once, spreads three consumers over the three partitions, brings
// a consumer killed with SIGKILL back by its restart policy without losing an
// order, the
// analytics service counts them, the orders survive `down` and `up`, and the
// monitoring profile's Prometheus scrapes every service and loads the rules.
// It logs the time to healthy and each service's memory (docs/DEPLOY.md).
func TestComposeStackUpForReal(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	daemon, cli := requireDocker(t)
	requireCompose(t, cli)
	rulesBefore := iptablesRules(t)
	d := startDockerd(t, daemon, cli)
	builder, runtimeImage := baseImages(t, d)
	buildImage(t, d, builder, runtimeImage, "local") // foodpipe:local, as the compose files name it
	images := serviceImages(t, d, builder)

	dir := t.TempDir()
	kafkaAddr, pgAddr := freeAddr(t), freeAddr(t)
	producerAddr, analyticsAddr, promAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	_, pgPort, _ := strings.Cut(pgAddr, ":")
	dbURL := "postgres://postgres:foodpipe@" + pgAddr + "/foodpipe?sslmode=disable"
	override := filepath.Join(dir, "compose.test.yml")
	writeFile(t, override, testOverride(map[string]string{
		"KAFKA": kafkaAddr, "PGPORT": pgPort, "DB": dbURL, "PRODUCER": producerAddr, "ANALYTICS": analyticsAddr,
		"PROM": promAddr, "PGIMAGE": images["postgres"], "PROMIMAGE": images["prometheus"], "DIR": dir,
		"ADDRFILE": consumerAddrFile,
	}))
	writeFile(t, filepath.Join(dir, "prometheus.yml"), prometheusForTest(t, promAddr))
	if err := os.MkdirAll(filepath.Join(dir, "targets"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := &compose{d: d, files: []string{"docker-compose.yml", "docker-compose.embedded.yml", override}}
	t.Cleanup(func() { checkNothingLeft(t, c, rulesBefore) })

	// Up, healthy, with no producer yet: the orders are counted exactly.
	begin := time.Now()
	c.must(t, 5*time.Minute, "up", "--detach", "--wait", "--scale", "producer=0")
	healthy := time.Since(begin)
	t.Logf("docker compose up --wait: healthy in %v", healthy.Round(100*time.Millisecond))
	checkHostNetworkOnly(t, d)

	// 100 orders, stored once.
	c.must(t, 2*time.Minute, "run", "--rm", "--no-deps", "producer", "produce", "--count", "100", "--rate", "0")
	eventually(t, time.Minute, "100 orders stored", func() bool { return storedCount(t, dbURL) >= 100 })
	time.Sleep(2 * time.Second) // a late duplicate would show
	if n := storedCount(t, dbURL); n != 100 {
		t.Fatalf("%d orders stored, want 100", n)
	}

	// Three consumers: each owns one of the three partitions.
	c.must(t, 3*time.Minute, "up", "--detach", "--wait", "--scale", "producer=0", "--scale", "consumer=3")
	eventually(t, time.Minute, "each of 3 consumers owning one partition", func() bool {
		owned := map[string]bool{}
		ids := c.containers(t, "consumer")
		for _, id := range ids {
			parts := ownedPartitions(consumerMetricsAddr(d, id))
			if len(parts) != 1 {
				return false
			}
			owned[parts[0]] = true
		}
		return len(ids) == 3 && len(owned) == 3
	})

	// A consumer killed mid-flow comes back by its restart policy, and no
	// order is lost or doubled.
	producer := c.must(t, time.Minute, "run", "--detach", "--no-deps", "producer", "produce", "--count", "400", "--rate", "100")
	producerID := strings.TrimSpace(lastLine(producer))
	eventually(t, 30*time.Second, "orders flowing", func() bool { return storedCount(t, dbURL) > 100 })
	// SIGKILL to the container's process from the host, as the kernel's OOM
	// killer or a crash ends it: `docker kill` counts as stopping it by hand,
	// after which Docker's restart policy leaves it stopped.
	victim := c.containers(t, "consumer")[0]
	pid, err := strconv.Atoi(d.must(t, "inspect", "--format", "{{.State.Pid}}", victim))
	if err != nil || pid < 2 {
		t.Fatalf("the consumer's pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the killed consumer restarted by Docker", func() bool {
		state := d.must(t, "inspect", "--format", "{{.RestartCount}} {{.State.Running}}", victim)
		return state != "0 false" && strings.HasSuffix(state, "true") && !strings.HasPrefix(state, "0 ")
	})
	if code := (&container{d: d, name: producerID}).wait(t, 2*time.Minute); code != 0 {
		t.Fatalf("the producer run exited %d", code)
	}
	d.must(t, "rm", producerID)
	eventually(t, 2*time.Minute, "500 orders stored", func() bool { return storedCount(t, dbURL) >= 500 })
	time.Sleep(2 * time.Second)
	if n := storedCount(t, dbURL); n != 500 {
		t.Fatalf("%d orders stored after the kill, want 500", n)
	}
	for _, id := range c.containers(t, "consumer") {
		if dup := metricValue(consumerMetricsAddr(d, id), "foodpipe_orders_duplicate_total"); dup > 0 {
			t.Logf("consumer %s met %v orders again after the kill (stored once all the same)", id[:12], dup)
		}
	}

	// The analytics service counted every order, once.
	eventually(t, time.Minute, "the analytics group's aggregates equal the orders table", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := c.run(ctx, "run", "--rm", "--no-deps", "analytics", "analytics", "verify")
		return err == nil
	})

	// The whole stack with its producer, and the monitoring profile's
	// Prometheus: every service that serves metrics is scraped, and the rules
	// are loaded.
	c.must(t, 3*time.Minute, "up", "--detach", "--wait", "--scale", "consumer=3")
	writeTargets(t, d, c, dir, producerAddr, analyticsAddr)
	c.must(t, 3*time.Minute, "--profile", "monitoring", "up", "--detach", "--wait", "prometheus")
	eventually(t, time.Minute, "Prometheus scraping every target", func() bool {
		up, total := promTargetsUp(promAddr)
		return total == 6 && up == total // 3 consumers, producer, analytics, itself
	})
	checkRulesLoaded(t, promAddr)
	logMemory(t, d)

	// down, then up: the orders are in the volume.
	c.must(t, 3*time.Minute, "--profile", "monitoring", "down")
	begin = time.Now()
	c.must(t, 5*time.Minute, "up", "--detach", "--wait")
	t.Logf("docker compose up --wait after down: healthy in %v", time.Since(begin).Round(100*time.Millisecond))
	if n := storedCount(t, dbURL); n < 500 {
		t.Fatalf("%d orders after down and up, want the 500 stored before and more", n)
	}
	stored := storedCount(t, dbURL)
	eventually(t, time.Minute, "the producer's orders stored after up", func() bool { return storedCount(t, dbURL) > stored })
}

// testOverride is the compose file the test adds on top of the stack's:
// every service on the host's network, on the ports the test picked, the
// stand-in images, and a Prometheus configuration of the test's.
func testOverride(v map[string]string) string {
	s := `# Written by e2e/compose_test.go: the stack on the host's network.

# A health check is a process started in the container: on a test machine
# whose cores are shared with other work it can take longer than the 5 s the
# stack gives it.
x-health: &health
  timeout: 30s

services:
  kafka:
    network_mode: host
    ports: !reset []
    command: ["broker", "--listen", "{KAFKA}", "--data-dir", "/home/nonroot/broker"]
    environment:
      KAFKA_BROKERS: "{KAFKA}"
  postgres:
    image: {PGIMAGE}
    network_mode: host
    ports: !reset []
    environment:
      PGPORT: "{PGPORT}"
    healthcheck:
      test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-p", "{PGPORT}", "-U", "postgres", "-d", "foodpipe"]
  topic-init:
    network_mode: host
    environment: &env
      KAFKA_BROKERS: "{KAFKA}"
      DATABASE_URL: "{DB}"
  migrate:
    network_mode: host
    environment: *env
  producer:
    network_mode: host
    healthcheck: *health
    environment:
      <<: *env
      METRICS_ADDR: "{PRODUCER}"
  consumer:
    network_mode: host
    healthcheck: *health
    environment:
      <<: *env
      # Replicas share the host's network: each takes a free port and says
      # which in the file its health check reads.
      METRICS_ADDR: "127.0.0.1:0"
      METRICS_ADDR_FILE: "{ADDRFILE}"
  analytics:
    network_mode: host
    healthcheck: *health
    environment:
      <<: *env
      METRICS_ADDR: "{ANALYTICS}"
  prometheus:
    image: {PROMIMAGE}
    network_mode: host
    ports: !reset []
    command:
      - --config.file=/etc/prometheus/prometheus.yml
      - --storage.tsdb.path=/prometheus
      - --web.listen-address={PROM}
    volumes: !override
      - {DIR}/prometheus.yml:/etc/prometheus/prometheus.yml:ro
      - ./deploy/monitoring/alerts.yml:/etc/prometheus/alerts.yml:ro
      - {DIR}/targets:/etc/prometheus/targets:ro
      - prometheus-data:/prometheus
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://{PROM}/-/ready"]
      interval: 2s
  # Not started (their images cannot be pulled here), but on the host's
  # network too, so that no service of the project asks for a network.
  grafana:
    network_mode: host
    ports: !reset []
  kafka-ui:
    network_mode: host
    ports: !reset []
`
	for k, val := range v {
		s = strings.ReplaceAll(s, "{"+k+"}", val)
	}
	return s
}

// prometheusForTest is deploy/monitoring/prometheus.yml with each job's
// targets read from a file the test writes (on the host's network Docker's
// DNS answers no service name), every job and rule file kept as they are.
func prometheusForTest(t *testing.T, promAddr string) string {
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
	jobs, _ := cfg["scrape_configs"].([]any)
	for _, j := range jobs {
		job := j.(map[string]any)
		name := job["job_name"].(string)
		delete(job, "dns_sd_configs")
		delete(job, "static_configs")
		if name == "prometheus" {
			job["static_configs"] = []any{map[string]any{"targets": []any{promAddr}}}
			continue
		}
		job["file_sd_configs"] = []any{map[string]any{"files": []any{"/etc/prometheus/targets/" + name + ".json"}, "refresh_interval": "2s"}}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// writeTargets writes the scrape targets of every job: the consumers'
// addresses as each replica wrote them, the producer's and the analytics'.
func writeTargets(t *testing.T, d *dockerd, c *compose, dir, producerAddr, analyticsAddr string) {
	t.Helper()
	var consumers []string
	for _, id := range c.containers(t, "consumer") {
		consumers = append(consumers, consumerMetricsAddr(d, id))
	}
	for job, targets := range map[string][]string{"consumer": consumers, "producer": {producerAddr}, "analytics": {analyticsAddr}} {
		b, err := json.Marshal([]map[string]any{{"targets": targets}})
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "targets", job+".json"), string(b))
	}
}

// consumerMetricsAddr reads the address a consumer container's metrics
// server took, from the file it wrote in its own root file system.
func consumerMetricsAddr(d *dockerd, id string) string {
	out, err := d.docker(context.Background(), "inspect", "--format", "{{.State.Pid}}", id)
	if err != nil || out == "0" {
		return ""
	}
	b, err := os.ReadFile(filepath.Join("/proc", out, "root", consumerAddrFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// ownedPartitions lists the partitions a consumer says it owns on /metrics.
func ownedPartitions(addr string) []string {
	if addr == "" {
		return nil
	}
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + addr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil
	}
	var parts []string
	if f := fams["foodpipe_partition_owned_since_seconds"]; f != nil {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "partition" {
					parts = append(parts, l.GetValue())
				}
			}
		}
	}
	return parts
}

// promTargetsUp counts Prometheus's active targets and those up.
func promTargetsUp(promAddr string) (up, total int) {
	var r struct {
		Data struct {
			ActiveTargets []struct {
				Health string `json:"health"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if !promGet(promAddr, "/api/v1/targets?state=active", &r) {
		return 0, 0
	}
	for _, tg := range r.Data.ActiveTargets {
		total++
		if tg.Health == "up" {
			up++
		}
	}
	return up, total
}

func promGet(promAddr, path string, v any) bool {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + promAddr + path)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(v) == nil
}

// checkRulesLoaded checks that Prometheus loaded every alert of alerts.yml.
func checkRulesLoaded(t *testing.T, promAddr string) {
	t.Helper()
	want, err := monitoring.Alerts()
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name string `json:"name"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if !promGet(promAddr, "/api/v1/rules", &r) {
		t.Fatal("Prometheus's /api/v1/rules does not answer")
	}
	var loaded []string
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			loaded = append(loaded, rule.Name)
		}
	}
	for _, g := range want.Groups {
		for _, rule := range g.Rules {
			if rule.Alert != "" && !slices.Contains(loaded, rule.Alert) {
				t.Errorf("Prometheus did not load alert %s (loaded %v)", rule.Alert, loaded)
			}
		}
	}
	t.Logf("Prometheus loaded %d rules", len(loaded))
}

// logMemory logs each running container's memory, as docker stats reads it
// from its cgroup.
func logMemory(t *testing.T, d *dockerd) {
	t.Helper()
	out := d.must(t, "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}")
	lines := strings.Split(out, "\n")
	slices.Sort(lines)
	t.Logf("memory of each container (docker stats --no-stream):\n%s", strings.Join(lines, "\n"))
}

// checkHostNetworkOnly checks that the stack made no network: every
// container is on the host's, and the daemon has no bridge.
func checkHostNetworkOnly(t *testing.T, d *dockerd) {
	t.Helper()
	nets := strings.Fields(d.must(t, "network", "ls", "--format", "{{.Name}}"))
	for _, n := range nets {
		if n != "host" && n != "none" {
			t.Errorf("the daemon has network %q; the test runs everything on the host's", n)
		}
	}
}

// checkNothingLeft takes the stack down with its volumes and checks that no
// container, volume, network or firewall rule is left; dockerd's own cleanup
// then checks its mounts.
func checkNothingLeft(t *testing.T, c *compose, rulesBefore string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if t.Failed() {
		// What each container did, and what its health check said.
		ps, _ := c.run(ctx, "ps", "--all")
		logs, _ := c.run(ctx, "logs", "--no-color", "--tail", "25")
		t.Logf("--- compose ps --all:\n%s\n--- compose logs --tail 25, stats lines left out:\n%s", ps, tail(withoutStats(logs), 16384))
		ids, _ := c.run(ctx, "ps", "--all", "--quiet")
		for _, id := range strings.Fields(ids) {
			if h, err := c.d.docker(ctx, "inspect", "--format", "{{.Name}} {{json .State.Health}}", id); err == nil && !strings.HasSuffix(h, " null") {
				t.Logf("health of %s", tail(h, 2048))
			}
		}
	}
	if _, err := c.run(ctx, "--profile", "monitoring", "down", "--volumes", "--remove-orphans", "--timeout", "10"); err != nil {
		t.Errorf("compose down: %v", err)
	}
	for what, args := range map[string][]string{
		"container": {"ps", "--all", "--quiet"},
		"volume":    {"volume", "ls", "--quiet"},
	} {
		if out, err := c.d.docker(ctx, args...); err != nil || out != "" {
			t.Errorf("after compose down, %s left: %q %v", what, out, err)
		}
	}
	checkHostNetworkOnly(t, c.d)
	if after := iptablesRules(t); after != rulesBefore {
		t.Errorf("the firewall rules changed:\nbefore:\n%s\nafter:\n%s", rulesBefore, after)
	}
}

// iptablesRules is the host's firewall rules as iptables-save prints them,
// or "" where it is not installed.
func iptablesRules(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("iptables-save")
	if err != nil {
		return ""
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		return ""
	}
	var rules []string
	for line := range strings.Lines(string(out)) {
		if !strings.HasPrefix(line, "#") { // its comments carry the time
			rules = append(rules, strings.TrimSpace(line))
		}
	}
	return strings.Join(rules, "\n")
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
