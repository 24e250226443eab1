package deploy

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"foodpipe/internal/config"
)

// root is the repository root, where the compose files live.
const root = ".."

// loadCompose loads compose files the way `docker compose -f a -f b` does,
// with an empty environment (every interpolated variable has a default) and
// the ui, monitoring and notify profiles enabled.
func loadCompose(t *testing.T, files ...string) *types.Project {
	t.Helper()
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(root, f)
	}
	opts, err := cli.NewProjectOptions(paths,
		cli.WithWorkingDirectory(root),
		cli.WithEnv(nil),
		cli.WithProfiles([]string{"ui", "monitoring", "notify"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load %v: %v", files, err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("%s: %v", p.Name, err)
	}
	return s
}

// env returns a service's environment as a map of set values.
func env(s types.ServiceConfig) map[string]string {
	m := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			m[k] = *v
		}
	}
	return m
}

// runtimeVars are read by the Go runtime, not by foodpipe's configuration.
var runtimeVars = []string{"GOMEMLIMIT", "GOMAXPROCS", "GOGC"}

// checkFoodpipeEnv checks that env holds only foodpipe's variables (and the Go
// runtime's) and that foodpipe accepts the values together.
func checkFoodpipeEnv(t *testing.T, where string, env map[string]string) {
	t.Helper()
	known := map[string]bool{}
	for _, v := range config.Vars {
		known[v.Name] = true
	}
	for k := range env {
		if !known[k] && !slices.Contains(runtimeVars, k) {
			t.Errorf("%s passes %s, which foodpipe does not read (not in config.Vars)", where, k)
		}
	}
	c, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		t.Errorf("%s: foodpipe refuses its configuration: %v", where, err)
	}
}

// isFoodpipe tells the services that run the foodpipe image: every one the
// Dockerfile builds but the mail server, which is its mail target.
func isFoodpipe(s types.ServiceConfig) bool {
	if s.Build != nil && s.Build.Target == "mail" {
		return false
	}
	return s.Build != nil || strings.HasPrefix(s.Image, "foodpipe")
}

func wantDependsOn(t *testing.T, s types.ServiceConfig, on, condition string) {
	t.Helper()
	d, ok := s.DependsOn[on]
	if !ok {
		t.Errorf("%s does not depend on %s", s.Name, on)
		return
	}
	if d.Condition != condition {
		t.Errorf("%s waits for %s to be %s, want %s", s.Name, on, d.Condition, condition)
	}
}

func wantHealthcheck(t *testing.T, s types.ServiceConfig) {
	t.Helper()
	if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 {
		t.Errorf("%s has no health check", s.Name)
	}
}

// checkPipeline checks what both topologies share: the foodpipe services, the
// order they start in, and their settings.
func checkPipeline(t *testing.T, p *types.Project) {
	t.Helper()
	for _, name := range []string{"kafka", "postgres", "topic-init", "migrate", "producer", "consumer", "analytics", "notify", "mail", "kafka-ui"} {
		service(t, p, name)
	}
	kafka, pg := service(t, p, "kafka"), service(t, p, "postgres")
	wantHealthcheck(t, kafka)
	wantHealthcheck(t, pg)
	if !strings.HasPrefix(pg.Image, "postgres:17") {
		t.Errorf("postgres image %q, want PostgreSQL 17", pg.Image)
	}
	if !slices.ContainsFunc(kafka.Ports, func(p types.ServicePortConfig) bool { return p.Target == 9092 && p.Published == "9092" }) {
		t.Errorf("kafka does not publish 9092 to the host: %+v", kafka.Ports)
	}

	topic := service(t, p, "topic-init")
	if got := strings.Join(topic.Command, " "); got != "topic create" {
		t.Errorf("topic-init runs %q", got)
	}
	wantDependsOn(t, topic, "kafka", types.ServiceConditionHealthy)
	te := env(topic)
	if te["KAFKA_PARTITIONS"] != "3" || te["KAFKA_REPLICATION_FACTOR"] != "1" {
		t.Errorf("topic-init partitions %q, replication %q; want 3 and 1", te["KAFKA_PARTITIONS"], te["KAFKA_REPLICATION_FACTOR"])
	}
	if d, err := config.ParseRetention(te["KAFKA_RETENTION"]); err != nil || d != 7*24*time.Hour {
		t.Errorf("topic-init retention %q, want 7 days (604800000 ms)", te["KAFKA_RETENTION"])
	}

	migrate := service(t, p, "migrate")
	if got := strings.Join(migrate.Command, " "); got != "migrate up" {
		t.Errorf("migrate runs %q", got)
	}
	wantDependsOn(t, migrate, "postgres", types.ServiceConditionHealthy)

	producer := service(t, p, "producer")
	wantDependsOn(t, producer, "topic-init", types.ServiceConditionCompletedSuccessfully)
	if got := strings.Join(producer.Command, " "); got != "produce" {
		t.Errorf("producer runs %q, want produce", got)
	}
	if e := env(producer); e["PRODUCER_RATE"] != "10" || e["METRICS_ADDR"] != ":9100" {
		t.Errorf("producer rate %q, metrics %q", e["PRODUCER_RATE"], e["METRICS_ADDR"])
	}
	wantHealthcheck(t, producer)

	consumer := service(t, p, "consumer")
	wantDependsOn(t, consumer, "topic-init", types.ServiceConditionCompletedSuccessfully)
	wantDependsOn(t, consumer, "migrate", types.ServiceConditionCompletedSuccessfully)
	wantDependsOn(t, consumer, "postgres", types.ServiceConditionHealthy)
	if got := strings.Join(consumer.Command, " "); got != "consume" {
		t.Errorf("consumer runs %q, want consume", got)
	}
	if consumer.Deploy == nil || consumer.Deploy.Replicas == nil || *consumer.Deploy.Replicas != 2 {
		t.Errorf("consumer replicas: %d, want 2", consumer.GetScale())
	}
	if e := env(consumer); e["METRICS_ADDR"] != ":9100" {
		t.Errorf("consumer metrics %q", e["METRICS_ADDR"])
	}
	wantHealthcheck(t, consumer)

	analytics := service(t, p, "analytics")
	if got := strings.Join(analytics.Command, " "); got != "analytics" {
		t.Errorf("analytics runs %q, want analytics", got)
	}
	wantDependsOn(t, analytics, "migrate", types.ServiceConditionCompletedSuccessfully)
	wantHealthcheck(t, analytics)

	checkNotify(t, p)

	// One image: every foodpipe service runs it, built from the Dockerfile
	// with no target (its last stage), and says by its command what it runs.
	for _, s := range p.Services {
		if !isFoodpipe(s) {
			continue
		}
		if s.Image != "foodpipe:local" || s.Build == nil || s.Build.Target != "" || len(s.Command) == 0 {
			t.Errorf("%s: image %q, build %+v, command %v; want foodpipe:local from the Dockerfile, with a command", s.Name, s.Image, s.Build, s.Command)
		}
	}
	// Docker keeps a container's output without bound unless told.
	for _, s := range p.Services {
		if s.Logging == nil || (s.Logging.Driver == "json-file" && (s.Logging.Options["max-size"] == "" || s.Logging.Options["max-file"] == "")) {
			t.Errorf("%s: logs without rotation: %+v", s.Name, s.Logging)
		}
	}
	for _, s := range []types.ServiceConfig{producer, consumer, analytics, service(t, p, "notify")} {
		if hc := strings.Join(s.HealthCheck.Test, " "); !strings.Contains(hc, "/foodpipe health") {
			t.Errorf("%s health check %q does not use foodpipe health (the image has no shell or curl)", s.Name, hc)
		}
	}

	checkHealthConditions(t, p)
	checkPorts(t, p)
	checkMonitoring(t, p)

	ui := service(t, p, "kafka-ui")
	if !slices.Contains(ui.Profiles, "ui") || !strings.HasPrefix(ui.Image, "kafbat/kafka-ui") {
		t.Errorf("kafka-ui: image %q, profiles %v", ui.Image, ui.Profiles)
	}
	wantDependsOn(t, ui, "kafka", types.ServiceConditionHealthy)

	// Named volumes keep Kafka's and PostgreSQL's data, and the mail
	// server's inbox, across re-creation.
	for _, s := range []types.ServiceConfig{kafka, pg, service(t, p, "mail")} {
		if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
			_, declared := p.Volumes[v.Source]
			return v.Type == types.VolumeTypeVolume && declared
		}) {
			t.Errorf("%s keeps its data in no named volume: %+v", s.Name, s.Volumes)
		}
	}

	for _, s := range p.Services {
		if isFoodpipe(s) {
			checkFoodpipeEnv(t, p.Name+"/"+s.Name, env(s))
		}
	}
}

func TestComposeKRaftStack(t *testing.T) {
	p := loadCompose(t, "docker-compose.yml")
	checkPipeline(t, p)
	kafka := service(t, p, "kafka")
	if !strings.HasPrefix(kafka.Image, "apache/kafka:4.") {
		t.Errorf("kafka image %q, want apache/kafka 4.x", kafka.Image)
	}
	e := env(kafka)
	if e["KAFKA_PROCESS_ROLES"] != "broker,controller" || e["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "" {
		t.Errorf("kafka is not a combined KRaft node: %v", e)
	}
	if _, ok := p.Services["zookeeper"]; ok {
		t.Error("the KRaft stack has a zookeeper")
	}
	// Containers and the host each get a listener they can reach.
	if adv := e["KAFKA_ADVERTISED_LISTENERS"]; !strings.Contains(adv, "kafka:19092") || !strings.Contains(adv, "localhost:9092") {
		t.Errorf("advertised listeners %q", adv)
	}
	if got := env(service(t, p, "producer"))["KAFKA_BROKERS"]; got != "kafka:19092" {
		t.Errorf("producer brokers %q", got)
	}
}

func TestComposeZooKeeperStackLoadsOnItsOwn(t *testing.T) {
	p := loadCompose(t, "docker-compose.zookeeper.yml")
	checkPipeline(t, p)
	zk, kafka := service(t, p, "zookeeper"), service(t, p, "kafka")
	if !strings.HasPrefix(zk.Image, "confluentinc/cp-zookeeper:7.9.") || !strings.HasPrefix(kafka.Image, "confluentinc/cp-kafka:7.9.") {
		t.Errorf("images %q and %q, want Confluent Platform 7.9", zk.Image, kafka.Image)
	}
	wantHealthcheck(t, zk)
	wantDependsOn(t, kafka, "zookeeper", types.ServiceConditionHealthy)
	if env(kafka)["KAFKA_ZOOKEEPER_CONNECT"] != "zookeeper:2181" {
		t.Errorf("kafka is not on ZooKeeper: %v", env(kafka))
	}
	if p.Name == loadCompose(t, "docker-compose.yml").Name {
		t.Error("both topologies share a project name, and so their volumes")
	}
}

func TestComposeSmallBoxOverride(t *testing.T) {
	for _, base := range []string{"docker-compose.yml", "docker-compose.zookeeper.yml"} {
		t.Run(base, func(t *testing.T) {
			p := loadCompose(t, base, "docker-compose.small.yml")
			checkPipeline(t, p)
			if heap := env(service(t, p, "kafka"))["KAFKA_HEAP_OPTS"]; !strings.Contains(heap, "-Xmx512m") {
				t.Errorf("kafka heap %q, want -Xmx512m", heap)
			}
			if cmd := strings.Join(service(t, p, "postgres").Command, " "); !strings.Contains(cmd, "shared_buffers=256MB") {
				t.Errorf("postgres command %q, want shared_buffers=256MB", cmd)
			}
			for _, name := range []string{"producer", "consumer"} {
				s := service(t, p, name)
				if s.Deploy == nil || s.Deploy.Resources.Limits == nil || s.Deploy.Resources.Limits.MemoryBytes != 128<<20 {
					t.Errorf("%s has no 128M memory limit", name)
				}
			}
			if r := service(t, p, "consumer").Deploy.Replicas; r != nil && *r != 2 {
				t.Errorf("the override lost the consumer's replicas: %d", *r)
			}
			checkSmallBoxLimits(t, p)
		})
	}
}

// The Dockerfile builds one image, statically, stamped with its version and
// revision, distroless and run by nonroot (uid 65532). e2e/image_test.go
// builds and runs it.
func TestDockerfileTargets(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string][]string{} // stage name → its instructions
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if strings.EqualFold(f[0], "FROM") && len(f) == 4 && strings.EqualFold(f[2], "AS") {
			cur = f[3]
		}
		stages[cur] = append(stages[cur], line)
	}
	has := func(stage, text string) bool {
		return slices.ContainsFunc(stages[stage], func(l string) bool { return strings.Contains(l, text) })
	}
	for _, want := range []struct{ stage, text string }{
		{"build", "CGO_ENABLED=0"},
		{"build", "-trimpath"},
		{"build", `-ldflags "-s -w`},
		// The context has no .git: the version and revision come as
		// arguments and are stamped into the binary.
		{"build", "-X foodpipe/internal/telemetry.version=${VERSION}"},
		{"build", "-X foodpipe/internal/telemetry.revision=${REVISION}"},
		{"", "ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot"},
		{"foodpipe", "FROM ${RUNTIME_IMAGE} AS foodpipe"},
		{"foodpipe", `org.opencontainers.image.version="${VERSION}"`},
		{"foodpipe", `org.opencontainers.image.revision="${REVISION}"`},
		// Numeric: Kubernetes' runAsNonRoot cannot verify a user name.
		{"foodpipe", "USER 65532:65532"},
		{"foodpipe", `ENTRYPOINT ["/foodpipe"]`},
		{"foodpipe", `CMD ["help"]`},
	} {
		if !has(want.stage, want.text) {
			t.Errorf("Dockerfile stage %q lacks %q", want.stage, want.text)
		}
	}
	// The mail target: Mailpit at the version go.mod pins, as nonroot too.
	for _, want := range []struct{ stage, text string }{
		{"mailpit-build", "go build"},
		{"mailpit-build", "github.com/axllent/mailpit"},
		{"mail", "FROM ${RUNTIME_IMAGE} AS mail"},
		{"mail", "USER 65532:65532"},
		{"mail", `ENTRYPOINT ["/mailpit"]`},
	} {
		if !has(want.stage, want.text) {
			t.Errorf("Dockerfile stage %q lacks %q", want.stage, want.text)
		}
	}
	if has("mailpit-build", "@v") {
		t.Error("the mail target names a Mailpit version of its own; it builds the one go.mod pins")
	}
	// One foodpipe image, the last stage, so that a build without a target
	// makes it; no stage sets a health check a one-shot command would be
	// asked.
	if names := slices.Collect(maps.Keys(stages)); len(names) != 5 {
		t.Errorf("Dockerfile stages %v, want the arguments, build, mailpit-build, mail and foodpipe", names)
	}
	if last := slices.IndexFunc(strings.Split(string(b), "\n"), func(l string) bool { return strings.HasPrefix(l, "FROM ${RUNTIME_IMAGE} AS foodpipe") }); last < 0 || strings.Contains(strings.Join(strings.Split(string(b), "\n")[last+1:], "\n"), "\nFROM ") {
		t.Error("the foodpipe stage is not the Dockerfile's last: a build without --target would not make it")
	}
	for stage := range stages {
		if has(stage, "HEALTHCHECK") {
			t.Errorf("Dockerfile stage %q sets a HEALTHCHECK: the image runs one-shot commands too", stage)
		}
	}
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil || !strings.Contains(string(ignore), "\n.env\n") {
		t.Errorf(".dockerignore must keep .env (secrets) out of the build context: %v", err)
	}
}

// The small-machine stack puts foodpipe's embedded broker, from the one
// image, in Kafka's place: foodpipe's variables only, its data in a volume
// the image's user owns, and a health check the broker can pass.
func TestComposeEmbeddedBrokerOverride(t *testing.T) {
	p := loadCompose(t, "docker-compose.yml", "docker-compose.embedded.yml")
	k := service(t, p, "kafka")
	if k.Image != "foodpipe:local" || len(k.Command) < 3 || k.Command[0] != "broker" || !slices.Contains(k.Command, "--data-dir") {
		t.Errorf("kafka runs %q %v, want foodpipe:local broker with a data dir", k.Image, k.Command)
	}
	e := env(k)
	checkFoodpipeEnv(t, "embedded kafka", e) // Apache Kafka's own variables are gone
	if listen := k.Command[slices.Index(k.Command, "--listen")+1]; e["KAFKA_BROKERS"] != listen {
		t.Errorf("the broker listens on %s but its health check asks %s", listen, e["KAFKA_BROKERS"])
	}
	for _, s := range p.Services {
		if isFoodpipe(s) && s.Name != "kafka" && env(s)["KAFKA_BROKERS"] != e["KAFKA_BROKERS"] {
			t.Errorf("%s reaches Kafka at %s, the broker listens on %s", s.Name, env(s)["KAFKA_BROKERS"], e["KAFKA_BROKERS"])
		}
	}
	if len(k.Volumes) != 1 || k.Volumes[0].Target != "/home/nonroot" || p.Volumes[k.Volumes[0].Source].Name == "" {
		t.Errorf("kafka volumes %+v, want one named volume on the image user's home", k.Volumes)
	}
	if hc := k.HealthCheck; hc == nil || strings.Join(hc.Test, " ") != "CMD /foodpipe topic describe" {
		t.Errorf("kafka health check %+v, want foodpipe topic describe", hc)
	}
}

// checkNotify checks the notifier and its mail server: notify waits for the
// schema, the topic and a healthy mail server, sends to it by its service
// name, and is healthy when it can send; the mail server is Mailpit from the
// Dockerfile's mail target, which keeps every message in a volume, takes
// mail for the generated customers' domain only, and has a health check.
func checkNotify(t *testing.T, p *types.Project) {
	t.Helper()
	n, m := service(t, p, "notify"), service(t, p, "mail")
	if got := strings.Join(n.Command, " "); !strings.HasPrefix(got, "notify --id ") {
		t.Errorf("notify runs %q, want notify with an id", got)
	}
	wantDependsOn(t, n, "topic-init", types.ServiceConditionCompletedSuccessfully)
	wantDependsOn(t, n, "migrate", types.ServiceConditionCompletedSuccessfully)
	wantDependsOn(t, n, "mail", types.ServiceConditionHealthy)
	e := env(n)
	if e["SMTP_URL"] != "smtp://mail:1025" || e["MAIL_API_URL"] != "http://mail:8025" || e["METRICS_ADDR"] != ":9100" {
		t.Errorf("notify sends to %q, reads %q, serves metrics on %q", e["SMTP_URL"], e["MAIL_API_URL"], e["METRICS_ADDR"])
	}
	if hc := strings.Join(n.HealthCheck.Test, " "); hc != "CMD /foodpipe health --path /readyz" {
		t.Errorf("notify health check %q, want its readiness (it can send)", hc)
	}
	if m.Build == nil || m.Build.Target != "mail" || m.Image != "foodpipe-mail:local" {
		t.Errorf("mail: image %q, build %+v; want foodpipe-mail:local from the Dockerfile's mail target", m.Image, m.Build)
	}
	cmd := strings.Join(m.Command, " ")
	for _, want := range []string{"--smtp=:1025", "--listen=:8025", "--max=0", "--database=/home/nonroot/", `--smtp-allowed-recipients=@example\.com$`} {
		if !strings.Contains(cmd, want) {
			t.Errorf("mail runs %q, without %q", cmd, want)
		}
	}
	wantHealthcheck(t, m)
	if hc := strings.Join(m.HealthCheck.Test, " "); !strings.HasPrefix(hc, "CMD /mailpit readyz") {
		t.Errorf("mail health check %q, want mailpit readyz (the image has no shell)", hc)
	}
	if len(m.Volumes) != 1 || m.Volumes[0].Target != "/home/nonroot" {
		t.Errorf("mail volumes %+v, want one on the image user's home, where its database is", m.Volumes)
	}
}
