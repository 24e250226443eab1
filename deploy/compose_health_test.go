package deploy

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"sigs.k8s.io/yaml"

	"foodpipe/internal/config"
)

// checkHealthConditions checks that each health check tests what its
// dependents need, and that the one-shot services retry what they try once.
func checkHealthConditions(t *testing.T, p *types.Project) {
	t.Helper()
	// pg_isready without -h asks through the Unix socket, which the image's
	// temporary init server answers before the real one listens on TCP
	// (docker-library/postgres#880): healthy too early, and migrate fails.
	pg := strings.Join(service(t, p, "postgres").HealthCheck.Test, " ")
	if !regexp.MustCompile(`pg_isready .*-h (127\.0\.0\.1|localhost)\b`).MatchString(pg) {
		t.Errorf("postgres health check %q does not ask over TCP (-h 127.0.0.1)", pg)
	}
	// migrate connects once and topic-init tries a broker a few times: a
	// failure must bring another try, not a stack that never starts.
	for _, name := range []string{"migrate", "topic-init"} {
		if r := service(t, p, name).Restart; !strings.HasPrefix(r, types.RestartPolicyOnFailure) {
			t.Errorf("%s restart %q, want on-failure so that a first failed try is retried", name, r)
		}
	}
	// A health check that runs a Kafka or ZooKeeper tool starts a JVM, which
	// takes its heap from KAFKA_HEAP_OPTS: the check must set a small one of
	// its own, or it gets the server's (512 MB in the small-box profile) every
	// interval, inside the server's memory limit.
	for name, s := range p.Services {
		if s.HealthCheck == nil {
			continue
		}
		hc := strings.Join(s.HealthCheck.Test, " ")
		if !strings.Contains(hc, "kafka-") && !strings.Contains(hc, "zookeeper-shell") {
			continue
		}
		heap := regexp.MustCompile(`KAFKA_HEAP_OPTS='[^']*-Xmx(\d+)m[^']*'`).FindStringSubmatch(hc)
		if heap == nil {
			t.Errorf("%s health check %q runs a JVM with the server's KAFKA_HEAP_OPTS", name, hc)
			continue
		}
		if mb, _ := strconv.Atoi(heap[1]); mb > 128 {
			t.Errorf("%s health check heap %d MB, want at most 128", name, mb)
		}
	}
}

// checkPorts checks that every published port is bound to the loopback
// address, and that PostgreSQL is published where .env.example's default
// DATABASE_URL looks, so that foodpipe status and dlq work from the host.
func checkPorts(t *testing.T, p *types.Project) {
	t.Helper()
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s:%s: bind it to 127.0.0.1, nothing here is meant for the network", name, port.HostIP, port.Published)
			}
		}
	}
	def := ""
	for _, v := range config.Vars {
		if v.Name == "DATABASE_URL" {
			def = v.Default
		}
	}
	u, err := url.Parse(def)
	if err != nil || u.Host == "" {
		t.Fatalf("default DATABASE_URL %q: %v", def, err)
	}
	host, portStr, _ := net.SplitHostPort(u.Host)
	pg := service(t, p, "postgres")
	if !slices.ContainsFunc(pg.Ports, func(pc types.ServicePortConfig) bool {
		return pc.Target == 5432 && pc.HostIP == host && pc.Published == portStr
	}) {
		t.Errorf("postgres is not published on %s, where the default DATABASE_URL looks: %+v", u.Host, pg.Ports)
	}
	if db := strings.TrimPrefix(u.Path, "/"); env(pg)["POSTGRES_DB"] != db {
		t.Errorf("postgres creates database %q, the default DATABASE_URL names %q", env(pg)["POSTGRES_DB"], db)
	}
}

// bindMount returns the host file or directory (relative to the repository)
// mounted at target, or "".
func bindMount(t *testing.T, s types.ServiceConfig, target string) string {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == target {
			rel, err := filepath.Rel(abs, v.Source)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s mounts %s, which does not exist: %v", s.Name, rel, err)
			}
			return filepath.ToSlash(rel)
		}
	}
	t.Errorf("%s mounts nothing at %s", s.Name, target)
	return ""
}

// promConfig is the part of prometheus.yml that says what is scraped and
// which rules are loaded.
type promConfig struct {
	Global struct {
		ScrapeInterval     string `json:"scrape_interval"`
		EvaluationInterval string `json:"evaluation_interval"`
	} `json:"global"`
	RuleFiles     []string `json:"rule_files"`
	ScrapeConfigs []struct {
		JobName      string `json:"job_name"`
		DNSSDConfigs []struct {
			Names           []string `json:"names"`
			Type            string   `json:"type"`
			Port            int      `json:"port"`
			RefreshInterval string   `json:"refresh_interval"`
		} `json:"dns_sd_configs,omitempty"`
		StaticConfigs []struct {
			Targets []string `json:"targets"`
		} `json:"static_configs,omitempty"`
	} `json:"scrape_configs"`
}

func readStrict(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// checkMonitoring checks the monitoring profile: Prometheus gets its
// configuration and the alerts, scrapes every service that serves metrics
// (each replica, through Docker's DNS), and Grafana gets the data source and
// the dashboard where its provisioning files say.
func checkMonitoring(t *testing.T, p *types.Project) {
	t.Helper()
	prom, graf := service(t, p, "prometheus"), service(t, p, "grafana")
	for _, s := range []types.ServiceConfig{prom, graf} {
		if !slices.Equal(s.Profiles, []string{"monitoring"}) {
			t.Errorf("%s profiles %v, want [monitoring]", s.Name, s.Profiles)
		}
	}
	wantHealthcheck(t, prom)
	wantDependsOn(t, graf, "prometheus", types.ServiceConditionHealthy)

	if got := bindMount(t, prom, "/etc/prometheus/prometheus.yml"); got != "deploy/monitoring/prometheus.yml" {
		t.Errorf("prometheus's configuration is %q", got)
	}
	if !slices.Contains(prom.Command, "--config.file=/etc/prometheus/prometheus.yml") {
		t.Errorf("prometheus command %v does not load the mounted configuration", prom.Command)
	}
	var cfg promConfig
	readStrict(t, "deploy/monitoring/prometheus.yml", &cfg)
	if len(cfg.RuleFiles) != 1 {
		t.Fatalf("prometheus.yml loads rule files %v, want the alerts", cfg.RuleFiles)
	}
	if got := bindMount(t, prom, cfg.RuleFiles[0]); got != "deploy/monitoring/alerts.yml" {
		t.Errorf("prometheus.yml loads %s, where %q is mounted", cfg.RuleFiles[0], got)
	}

	// Every service that serves metrics is a job of its own, named after the
	// service (the alerts select job="consumer"), found by DNS on the
	// service name so that both consumer replicas are scraped.
	scraped := map[string]int{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, d := range sc.DNSSDConfigs {
			if sc.JobName != d.Names[0] || len(d.Names) != 1 || d.Type != "A" {
				t.Errorf("job %s discovers %v type %s; want the service of the same name, type A", sc.JobName, d.Names, d.Type)
			}
			scraped[d.Names[0]] = d.Port
		}
	}
	for name, s := range p.Services {
		addr, ok := env(s)["METRICS_ADDR"]
		if !ok || addr == "" {
			continue
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Errorf("%s METRICS_ADDR %q: %v", name, addr, err)
			continue
		}
		if got, ok := scraped[name]; !ok || strconv.Itoa(got) != port {
			t.Errorf("%s serves metrics on port %s; prometheus.yml scrapes it on %d (found: %v)", name, port, got, ok)
		}
	}
	for _, name := range []string{"producer", "consumer"} {
		if _, ok := scraped[name]; !ok {
			t.Errorf("prometheus.yml does not scrape %s", name)
		}
	}

	if got := bindMount(t, graf, "/etc/grafana/provisioning"); got != "deploy/monitoring/grafana/provisioning" {
		t.Errorf("grafana's provisioning is %q", got)
	}
	var providers struct {
		APIVersion int `json:"apiVersion"`
		Providers  []struct {
			Name            string `json:"name"`
			Folder          string `json:"folder"`
			Type            string `json:"type"`
			DisableDeletion bool   `json:"disableDeletion"`
			AllowUIUpdates  bool   `json:"allowUiUpdates"`
			Options         struct {
				Path string `json:"path"`
			} `json:"options"`
		} `json:"providers"`
	}
	readStrict(t, "deploy/monitoring/grafana/provisioning/dashboards/foodpipe.yml", &providers)
	if len(providers.Providers) != 1 || providers.Providers[0].Type != "file" {
		t.Fatalf("dashboard providers %+v, want one of type file", providers.Providers)
	}
	dashDir := bindMount(t, graf, providers.Providers[0].Options.Path)
	if _, err := os.Stat(filepath.Join(root, dashDir, "foodpipe.json")); err != nil {
		t.Errorf("grafana loads dashboards from %s, which has no foodpipe.json: %v", dashDir, err)
	}
	if home := env(graf)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != providers.Providers[0].Options.Path+"/foodpipe.json" {
		t.Errorf("grafana's home dashboard %q is not the provisioned foodpipe.json", home)
	}
	var sources struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name      string `json:"name"`
			UID       string `json:"uid"`
			Type      string `json:"type"`
			Access    string `json:"access"`
			URL       string `json:"url"`
			IsDefault bool   `json:"isDefault"`
			Editable  bool   `json:"editable"`
		} `json:"datasources"`
	}
	readStrict(t, "deploy/monitoring/grafana/provisioning/datasources/prometheus.yml", &sources)
	promPort := ""
	for _, pc := range prom.Ports {
		promPort = strconv.Itoa(int(pc.Target))
	}
	if len(sources.Datasources) != 1 || sources.Datasources[0].URL != "http://prometheus:"+promPort {
		t.Errorf("grafana's data source %+v is not the prometheus service on its port %s", sources.Datasources, promPort)
	}
}

// checkSmallBoxLimits checks that on the small box every service has a
// memory limit, that Kafka's heap and its health check's fit in Kafka's, and
// that the services that stay up fit in 2 GB together.
func checkSmallBoxLimits(t *testing.T, p *types.Project) {
	t.Helper()
	var longRunning int64
	for name, s := range p.Services {
		if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.MemoryBytes == 0 {
			t.Errorf("%s has no memory limit on the small box", name)
			continue
		}
		if len(s.Profiles) == 0 && s.Restart == types.RestartPolicyUnlessStopped {
			longRunning += int64(s.Deploy.Resources.Limits.MemoryBytes) * int64(s.GetScale())
		}
	}
	if longRunning > 2<<30 {
		t.Errorf("the services that stay up may take %d MiB together, over the box's 2 GiB", longRunning>>20)
	}
	kafka := service(t, p, "kafka")
	xmx := func(s string) int64 {
		m := regexp.MustCompile(`-Xmx(\d+)m`).FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("no -Xmx in %q", s)
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return n << 20
	}
	heap := xmx(env(kafka)["KAFKA_HEAP_OPTS"]) + xmx(strings.Join(kafka.HealthCheck.Test, " "))
	// The JVM needs room beyond its heap (metaspace, threads, buffers).
	if limit := int64(kafka.Deploy.Resources.Limits.MemoryBytes); heap+128<<20 > limit {
		t.Errorf("kafka's heap and its health check's (%d MiB) leave under 128 MiB of its %d MiB limit", heap>>20, limit>>20)
	}
}
