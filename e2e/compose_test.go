package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"foodpipe/internal/mail"
)

// composeProjectName is the test's compose project: its containers and
// volumes are named after it, in the test's own daemon.
const composeProjectName = "foodpipe-e2e"

// compose runs `docker compose` on the stack's files and the test's
// override, with the variables the override reads.
type compose struct {
	d     *dockerd
	files []string
	env   []string
}

func (c *compose) run(ctx context.Context, args ...string) (string, error) {
	full := []string{"compose", "--project-name", composeProjectName}
	for _, f := range c.files {
		full = append(full, "--file", f)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, c.d.cli, full...)
	cmd.Dir = ".." // the repository, where the stack's files are, as a user runs it
	cmd.Env = append(append(os.Environ(), "DOCKER_HOST="+c.d.host), c.env...)
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
	return strings.Fields(c.must(t, time.Minute, "ps", "--all", "--quiet", service))
}

// requireCompose fails the test unless the docker client has the compose
// plugin scripts/test-deps builds.
func requireCompose(t *testing.T, cli string) {
	t.Helper()
	out, err := exec.Command(cli, "compose", "version").CombinedOutput()
	if err != nil {
		t.Fatalf("the compose test needs `%s compose` (Docker Compose as the CLI's plugin); scripts/test-deps builds it "+
			"from its Go module, or set %s=1 to skip the Docker tests: %v\n%s", cli, EnvNoDocker, err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}

// hostMemberID is a consumer's default id on the host's network: the host
// name and the first 12 hex digits of its container's id.
var hostMemberID = regexp.MustCompile(`^(.+)-([0-9a-f]{12})$`)

// `docker compose up` for real, on the test's own daemon: the small-machine
// stack (docker-compose.yml with docker-compose.embedded.yml, foodpipe's
// broker in Kafka's place) with e2e/testdata/compose.hostnet.yml on top,
// which puts every service on the host's network (the daemon has no bridge)
// and PostgreSQL in a stand-in image built from Debian's packages. The stack
// comes up healthy; the two consumer replicas, whose default ids tell them
// apart by their containers, share the partitions; orders are stored once
// each; a consumer killed with SIGKILL comes back by its restart policy,
// under the same id; `up --scale consumer=3` gives each of three consumers
// one partition; the monitoring profile's Prometheus (a stand-in built from
// Debian's package) scrapes every service that serves metrics, the exporter
// included, loads every rule of alerts.yml and finds FoodpipeConsumerNoProgress
// and FoodpipeExporterDown inactive; nothing is lost or doubled; every stored
// order has an email from the notifier (or a refusal its mail server gave);
// the analytics service counted each order once; `down` and `up` keep the
// orders and the emails; `down --volumes` leaves nothing; and the host's
// firewall rules are as they were. It logs the time to healthy and each
// container's memory (docs/DEPLOY.md).
func TestComposeStackUpForReal(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (minutes of images and containers): make test runs it")
	}
	daemon, cli := requireDocker(t)
	requireCompose(t, cli)
	// The daemon runs with --iptables=false: nothing of the test's may touch
	// the host's firewall, even after the daemon's own cleanup (registered
	// after this one, which therefore runs after it).
	if before, ok := iptablesRules(t); ok {
		t.Cleanup(func() {
			if after, _ := iptablesRules(t); after != before {
				t.Errorf("the host's firewall rules changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	d := startDockerd(t, daemon, cli)
	builder, runtimeImage := baseImages(t, d)
	foodpipeImage(t, d, builder, runtimeImage)
	d.must(t, "tag", "foodpipe:"+imageTag, "foodpipe:local") // as the compose files name it
	mailImage(t, d, builder, runtimeImage)
	images := serviceImages(t, d, builder)

	kafkaAddr, pgAddr, smtp, mailAPI, promAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	_, pgPort, _ := strings.Cut(pgAddr, ":")
	dbURL := "postgres://postgres:foodpipe@" + pgAddr + "/foodpipe?sslmode=disable"
	metrics := map[string]string{"producer": freeAddr(t), "analytics": freeAddr(t), "notify": freeAddr(t), "exporter": freeAddr(t)}
	promDir := t.TempDir()
	if err := os.Chmod(promDir, 0o755); err != nil { // read by the container's prometheus user
		t.Fatal(err)
	}
	promJobs := composePrometheus(t, promDir, promAddr)
	c := &compose{d: d,
		files: []string{"docker-compose.yml", "docker-compose.embedded.yml", "e2e/testdata/compose.hostnet.yml"},
		env: []string{
			"FOODPIPE_E2E_KAFKA=" + kafkaAddr, "FOODPIPE_E2E_PGPORT=" + pgPort, "FOODPIPE_E2E_DATABASE_URL=" + dbURL,
			"FOODPIPE_E2E_PG_IMAGE=" + images["postgres"], "FOODPIPE_E2E_SMTP=" + smtp, "FOODPIPE_E2E_MAIL_API=" + mailAPI,
			"FOODPIPE_E2E_PRODUCER_METRICS=" + metrics["producer"], "FOODPIPE_E2E_ANALYTICS_METRICS=" + metrics["analytics"],
			"FOODPIPE_E2E_NOTIFY_METRICS=" + metrics["notify"], "FOODPIPE_E2E_EXPORTER_METRICS=" + metrics["exporter"],
			"FOODPIPE_E2E_PROM_IMAGE=" + images["prometheus"], "FOODPIPE_E2E_PROMETHEUS=" + promAddr,
			"FOODPIPE_E2E_PROM_DIR=" + promDir,
		}}
	// Cleanups run last first: the time is logged after down.
	var begin time.Time
	t.Cleanup(func() { t.Logf("the stack's part, from up to down, took %v", time.Since(begin).Round(time.Second)) })
	t.Cleanup(func() { checkNothingLeft(t, c) })

	begin = time.Now()
	c.must(t, 5*time.Minute, "up", "--detach", "--wait", "--no-build", "--pull", "never")
	t.Logf("docker compose up --wait: every service healthy in %v", time.Since(begin).Round(100*time.Millisecond))
	checkHostNetworkOnly(t, d)

	// Two consumers on the host's network, with the ids they chose
	// themselves: distinct, each sharing the three partitions.
	var ids []string
	eventually(t, time.Minute, "both consumers in the group, sharing the partitions", func() bool {
		m := groupMembers(t, kafkaAddr)
		ids = slices.Sorted(maps.Keys(m))
		return len(m) == 2 && m[ids[0]]+m[ids[1]] == 3 && m[ids[0]] > 0 && m[ids[1]] > 0
	})
	for _, id := range ids {
		if !hostMemberID.MatchString(id) {
			t.Errorf("consumer id %q, want the host's name and its container's short id", id)
		}
	}
	t.Logf("consumer ids: %v", ids)

	eventually(t, time.Minute, "100 orders stored", func() bool { return storedCount(t, dbURL) >= 100 })

	// SIGKILL to a consumer's process from the host, as the kernel's OOM
	// killer or a crash ends it: `docker kill` counts as stopping it by hand,
	// after which Docker's restart policy leaves it stopped.
	victim := c.containers(t, "consumer")[0]
	pid, err := strconv.Atoi(d.must(t, "inspect", "--format", "{{.State.Pid}}", victim))
	if err != nil || pid < 2 {
		t.Fatalf("the consumer's pid: %v", err)
	}
	atKill := storedCount(t, dbURL)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	eventually(t, time.Minute, "the killed consumer restarted by Docker and healthy", func() bool {
		state := d.must(t, "inspect", "--format", "{{.RestartCount}} {{.State.Running}} {{.State.Health.Status}}", victim)
		return !strings.HasPrefix(state, "0 ") && strings.HasSuffix(state, " true healthy")
	})
	t.Logf("the killed consumer healthy again %v after the kill", time.Since(killed).Round(100*time.Millisecond))
	// It came back under the id it had: its static place in the group.
	eventually(t, time.Minute, "the same two consumers sharing the partitions again", func() bool {
		m := groupMembers(t, kafkaAddr)
		return len(m) == 2 && m[ids[0]] > 0 && m[ids[1]] > 0
	})
	eventually(t, time.Minute, "the pipeline going on after the kill", func() bool { return storedCount(t, dbURL) >= atKill+100 })

	logMemory(t, d) // the whole stack running, after about ten seconds of orders

	// Three consumers, as `--scale consumer=3` makes them, each owning one of
	// the three partitions; with the monitoring profile's exporter and
	// Prometheus, which scrapes every service that serves metrics and loads
	// every rule of alerts.yml.
	scaled := time.Now()
	c.must(t, 5*time.Minute, "--profile", "monitoring", "up", "--detach", "--wait", "--no-build", "--pull", "never",
		"--scale", "consumer=3", "consumer", "exporter", "prometheus")
	t.Logf("up --scale consumer=3 with the exporter and Prometheus: healthy in %v", time.Since(scaled).Round(100*time.Millisecond))
	var three map[string]int
	eventually(t, time.Minute, "three consumers in the group, one partition each", func() bool {
		three = groupMembers(t, kafkaAddr)
		for _, n := range three {
			if n != 1 {
				return false
			}
		}
		return len(three) == 3
	})
	for id := range three {
		if !hostMemberID.MatchString(id) {
			t.Errorf("consumer id %q, want the host's name and its container's short id", id)
		}
	}
	for _, id := range ids {
		if _, ok := three[id]; !ok {
			t.Errorf("consumer %s left the group when a third joined: %v", id, three)
		}
	}
	t.Logf("three consumers, one partition each: %v", three)
	checkPrometheus(t, c, &prometheus{addr: promAddr}, promDir, promJobs, metrics)
	t.Logf("the three consumers and the monitoring profile checked in %v", time.Since(scaled).Round(100*time.Millisecond))

	// The producer stopped: every order on the topic is in the table, once.
	c.must(t, time.Minute, "stop", "producer")
	produced := int(topicMessages(t, kafkaAddr, "food-orders"))
	eventually(t, time.Minute, fmt.Sprintf("all %d orders on the topic stored", produced), func() bool { return storedCount(t, dbURL) >= produced })
	onTopic := topicOrderIDs(t, kafkaAddr, "food-orders", produced)
	stored := queryStrings(t, dbURL, `SELECT order_id FROM orders`)
	if len(stored) != produced || len(onTopic) != produced {
		t.Errorf("%d orders stored, %d distinct on the topic, %d messages on it: want them equal", len(stored), len(onTopic), produced)
	}
	for _, id := range stored {
		if onTopic[id] != 1 {
			t.Errorf("order %s stored, found %d times on the topic", id, onTopic[id])
		}
	}

	// The notifier emailed every stored order through the mail service, or
	// recorded that the server refused it (the customer who moved away).
	eventually(t, 2*time.Minute, "the notifier settling every order", func() bool {
		settled := query[int64](t, dbURL, `SELECT coalesce(sum(next_offset), 0)::bigint FROM consumer_offsets WHERE group_id = 'order-notifications'`)
		return settled == int64(produced)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in, err := mail.ReadInbox(ctx, "http://"+mailAPI)
	if err != nil {
		t.Fatalf("the mail service's inbox: %v", err)
	}
	emailed := map[string]bool{}
	for _, m := range in.Messages {
		emailed[mail.OrderOf(m.MessageID)] = true
	}
	refused := queryStrings(t, dbURL, `SELECT order_id FROM notifications WHERE group_id = 'order-notifications' AND state = 'refused'`)
	missing := 0
	for _, id := range stored {
		if !emailed[id] && !slices.Contains(refused, id) {
			if missing++; missing <= 5 {
				t.Errorf("order %s stored, but has no email and no refusal", id)
			}
		}
	}
	t.Logf("%d orders stored once each; %d emails (%d distinct orders), %d refused", len(stored), len(in.Messages), in.Distinct, len(refused))
	if missing > 0 || in.Distinct == 0 {
		t.Errorf("%d of %d stored orders without an email; %d emailed", missing, len(stored), in.Distinct)
	}

	// The analytics service counted every order, once.
	eventually(t, time.Minute, "the analytics group's aggregates equal to the orders table", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := c.run(ctx, "run", "--rm", "--no-deps", "analytics", "analytics", "verify")
		return err == nil
	})

	// down, then up: the orders and the emails are in their volumes, and the
	// producer's new orders arrive.
	c.must(t, 3*time.Minute, "--profile", "monitoring", "down", "--timeout", "10")
	begin2 := time.Now()
	c.must(t, 5*time.Minute, "up", "--detach", "--wait", "--no-build", "--pull", "never")
	t.Logf("docker compose up --wait after down: healthy in %v", time.Since(begin2).Round(100*time.Millisecond))
	if n := storedCount(t, dbURL); n < len(stored) {
		t.Fatalf("%d orders after down and up, want the %d stored before", n, len(stored))
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	if again, err := mail.ReadInbox(ctx2, "http://"+mailAPI); err != nil || len(again.Messages) < len(in.Messages) {
		t.Errorf("the inbox after down and up: %d emails (%v), want the %d before", len(again.Messages), err, len(in.Messages))
	}
	eventually(t, time.Minute, "the producer's orders stored after up", func() bool { return storedCount(t, dbURL) > len(stored) })
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
	for _, n := range strings.Fields(d.must(t, "network", "ls", "--format", "{{.Name}}")) {
		if n != "host" && n != "none" {
			t.Errorf("the daemon has network %q; the test runs everything on the host's", n)
		}
	}
}

// checkNothingLeft takes the stack down with its volumes and checks that no
// container, volume or network is left; the daemon's own cleanup then
// checks its mounts. On failure it first logs what each container said.
func checkNothingLeft(t *testing.T, c *compose) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if t.Failed() {
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
}
