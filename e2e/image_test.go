package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"foodpipe/internal/kafka"
	"foodpipe/internal/store/dbtest"
)

// imageTag is the tag the test builds the image under, in its own daemon.
const imageTag = "e2e"

// imageVersion is the version the test stamps into the image, as a release
// build stamps its tag.
const imageVersion = "v0.0.0-e2e"

// stopGrace is how long `docker stop` gives a container between SIGTERM and
// SIGKILL; Docker's default, and what the consumer promises to finish in.
const stopGrace = 10 * time.Second

// The Dockerfile built for real by `make docker-build`, and the image run
// against the pipeline: the broker and PostgreSQL on the host, the
// topic and the schema made from the image, a producer and two consumers as
// read-only containers of uid 65532 on the host network. Every order arrives
// once, a consumer stopped by `docker stop` in the middle of the flow exits 0
// within its grace period and, restarted, doubles nothing, and `foodpipe
// health` inside each container reports it healthy. The image says which
// foodpipe it is: `foodpipe version` and its OCI labels give the version and
// commit make stamped.
func TestImageBuiltAndRunAgainstThePipeline(t *testing.T) {
	daemon, cli := requireDocker(t)
	d := startDockerd(t, daemon, cli)
	builder, runtimeImage := baseImages(t, d)
	revision := foodpipeImage(t, d, builder, runtimeImage)
	checkImageConfig(t, d, revision)

	p := &pipeline{addr: freeAddr(t), dataDir: t.TempDir(), db: dbtest.New(t)}
	p.broker = startBroker(t, p.addr, p.dataDir)
	env := []string{"KAFKA_BROKERS=" + p.addr, "DATABASE_URL=" + p.db, "STATS_INTERVAL=1s"}
	general := "foodpipe:" + imageTag

	// The jobs a deployment runs once, from the general image.
	if code := d.run(t, "topic-create", general, env, "topic", "create").wait(t, time.Minute); code != 0 {
		t.Fatalf("topic create exited %d", code)
	}
	var info kafka.TopicInfo
	var err error
	withAdmin(t, p.addr, func(adm *kadm.Client) { info, err = kafka.DescribeTopic(context.Background(), adm, "food-orders") })
	if err != nil {
		t.Fatalf("the topic the container created: %v", err)
	}
	if len(info.Partitions) != 3 { // KAFKA_PARTITIONS' default
		t.Errorf("food-orders has %d partitions, want 3", len(info.Partitions))
	}
	if code := d.run(t, "migrate", general, env, "migrate", "up").wait(t, time.Minute); code != 0 {
		t.Fatalf("migrate up exited %d", code)
	}
	if !query[bool](t, p.db, "SELECT to_regclass('orders') IS NOT NULL") {
		t.Fatal("migrate up from the image exited 0 but made no orders table")
	}

	// Each container serves its metrics and health on a port of its own: on
	// the host network, the images' default :9100 would collide.
	metricsAt := []string{freeAddr(t), freeAddr(t)}
	consumerEnv := func(i int) []string {
		return append(slices.Clone(env), "DB_MIGRATE=false", "METRICS_ADDR="+metricsAt[i])
	}
	consumers := []*container{
		d.run(t, "c1", general, consumerEnv(0), "consume", "--id", "c1"),
		d.run(t, "c2", general, consumerEnv(1), "consume", "--id", "c2"),
	}
	sharing := func() bool { m := groupMembers(t, p.addr); return len(m) == 2 && m["c1"] > 0 && m["c2"] > 0 }
	eventually(t, 30*time.Second, "the two consumer containers sharing the partitions", sharing)
	const orders = 3000 // 10 s at 300 orders/s
	producer := d.run(t, "producer", general, append(slices.Clone(env), "METRICS_ADDR="+freeAddr(t)),
		"produce", "--count", strconv.Itoa(orders), "--rate", "300")
	for _, c := range []*container{consumers[0], consumers[1], producer} {
		c.checkConfinement(t)
	}

	// Stop a consumer while orders flow: it finishes and commits what it
	// holds, then exits 0 before Docker would kill it.
	eventually(t, 30*time.Second, "orders flowing into the table", func() bool { return storedCount(t, p.db) > 0 })
	if !producer.running(t) {
		t.Fatal("the producer finished before the consumer was stopped: the stop would not be mid-flow")
	}
	code, took := consumers[0].stop(t)
	t.Logf("docker stop c1 took %v with %d orders stored", took.Round(time.Millisecond), storedCount(t, p.db))
	if code != 0 || took >= stopGrace {
		t.Fatalf("docker stop c1: exit code %d after %v, want 0 within %v", code, took, stopGrace)
	}
	// The same container again, with the same consumer id: it takes a share
	// of the partitions back.
	d.must(t, "start", consumers[0].name)
	eventually(t, 30*time.Second, "the restarted c1 sharing the partitions again", sharing)

	if code := producer.wait(t, 90*time.Second); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	p.checkEveryOrderOnce(t, orders)

	// The image has no HEALTHCHECK (it runs one-shot commands too): what
	// compose and Kubernetes ask is `foodpipe health` in the container.
	for _, c := range consumers {
		if out, err := c.d.docker(context.Background(), "exec", c.name, "/foodpipe", "health"); err != nil || !strings.Contains(out, "200") {
			t.Errorf("foodpipe health in %s: %q %v", c.name, out, err)
		}
	}
	// The table's unique order ids would hide a consumer that stopped without
	// committing: its successor would read the orders again and skip them as
	// duplicates. So the members running now (c2, and c1 since its restart)
	// must have met no order twice, as their metrics count.
	for i, c := range consumers {
		if dup := metricValue(metricsAt[i], "foodpipe_orders_duplicate_total"); dup != 0 {
			t.Errorf("%s counted %v duplicate orders (-1: no metrics), want 0: a stop left a batch uncommitted", c.name, dup)
		}
	}
	var processed float64
	for i := range consumers {
		processed += metricValue(metricsAt[i], "foodpipe_orders_processed_total")
	}
	t.Logf("the running members stored %v of the %d orders since they (re)started", processed, orders)
	for _, c := range consumers {
		if code, took := c.stop(t); code != 0 || took >= stopGrace {
			t.Errorf("docker stop %s: exit code %d after %v, want 0 within %v", c.name, code, took, stopGrace)
		}
	}
}

// builtImage is the foodpipe image as the first test of this process that
// needed it built it, saved with `docker save` in the process's scratch
// directory, so that the next test loads it into its daemon rather than
// building it again (minutes on a small machine).
var builtImage struct{ tarball, revision string }

// foodpipeImage gives d the image foodpipe:imageTag, built from this
// checkout (once per test process), and returns the commit stamped in it.
func foodpipeImage(t *testing.T, d *dockerd, builder, runtimeImage string) (revision string) {
	t.Helper()
	if builtImage.tarball != "" {
		if _, err := d.docker(context.Background(), "load", "--input", builtImage.tarball); err == nil {
			t.Logf("foodpipe:%s loaded, as an earlier test built it", imageTag)
			return builtImage.revision
		}
	}
	revision = buildImage(t, d, builder, runtimeImage, imageTag)
	tarball := filepath.Join(filepath.Dir(bin), "foodpipe-image.tar")
	if _, err := d.docker(context.Background(), "save", "--output", tarball, "foodpipe:"+imageTag); err == nil {
		builtImage.tarball, builtImage.revision = tarball, revision
	}
	return revision
}

// buildImage builds the image as foodpipe:tag through the Makefile, with the
// given base images, stamped with imageVersion and the checkout's commit,
// which it returns; it logs the time it took.
func buildImage(t *testing.T, d *dockerd, builder, runtimeImage, tag string) (revision string) {
	t.Helper()
	out, err := exec.Command("git", "-C", "..", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	revision = strings.TrimSpace(string(out))
	args := []string{"-C", "..", "docker-build",
		"DOCKER=" + d.cli,
		"IMAGE_TAG=" + tag,
		"VERSION=" + imageVersion,
		"REVISION=" + revision,
		// The build's RUN steps reach the Go module proxy through the host's
		// network: the daemon has no bridge.
		"DOCKER_BUILD_ARGS=--network host --build-arg BUILDER_IMAGE=" + builder + " --build-arg RUNTIME_IMAGE=" + runtimeImage,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.host, "BUILDKIT_PROGRESS=plain")
	begin := time.Now()
	built, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, tail(string(built), 16384))
	}
	t.Logf("make docker-build took %v", time.Since(begin).Round(time.Second))
	return revision
}

// imageConfig is the part of `docker image inspect` the test checks.
type imageConfig struct {
	User        string
	Entrypoint  []string
	Cmd         []string
	Labels      map[string]string
	Healthcheck *struct{ Test []string }
}

// maxImageSize bounds the image: the binary and the runtime base are about
// 30 MB, while the build stage (Go toolchain, sources, modules) is over a
// gigabyte, so an image above it carries what it should not.
const maxImageSize = 64 << 20

// checkImageConfig checks what the image runs, as whom, that it sets no
// health check (one-shot commands run from it too), that its labels and
// `foodpipe version` inside it name imageVersion and revision, and logs its
// size.
func checkImageConfig(t *testing.T, d *dockerd, revision string) {
	t.Helper()
	ref := "foodpipe:" + imageTag
	var c imageConfig
	if err := json.Unmarshal([]byte(d.must(t, "image", "inspect", "--format", "{{json .Config}}", ref)), &c); err != nil {
		t.Fatalf("%s config: %v", ref, err)
	}
	if c.User != "65532:65532" {
		t.Errorf("%s runs as %q, want 65532:65532 (numeric, for runAsNonRoot)", ref, c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/foodpipe"}) || !slices.Equal(c.Cmd, []string{"help"}) {
		t.Errorf("%s runs %v %v, want [/foodpipe] [help]", ref, c.Entrypoint, c.Cmd)
	}
	if c.Healthcheck != nil {
		t.Errorf("%s has a health check %v; each long-running service sets its own", ref, c.Healthcheck.Test)
	}
	for label, want := range map[string]string{
		"org.opencontainers.image.title":    "foodpipe",
		"org.opencontainers.image.version":  imageVersion,
		"org.opencontainers.image.revision": revision,
	} {
		if got := c.Labels[label]; got != want {
			t.Errorf("%s label %s = %q, want %q", ref, label, got, want)
		}
	}
	version := d.must(t, "run", "--rm", "--network", "host", "--read-only", ref, "version")
	if want := fmt.Sprintf("foodpipe %s (revision %s,", imageVersion, revision); !strings.HasPrefix(version, want) {
		t.Errorf("foodpipe version in the image printed %q, want it to begin %q", version, want)
	}
	t.Logf("foodpipe version in the image: %s", version)
	size, err := strconv.ParseInt(d.must(t, "image", "inspect", "--format", "{{.Size}}", ref), 10, 64)
	if err != nil {
		t.Fatalf("%s size: %v", ref, err)
	}
	t.Logf("%s: %.1f MB", ref, float64(size)/1e6)
	if size > maxImageSize {
		t.Errorf("%s is %d bytes, over %d", ref, size, maxImageSize)
	}
}

// container is one container of the test's daemon.
type container struct {
	d    *dockerd
	name string
}

// run starts a container on the host network with a read-only root file
// system and the given environment; its output is reported if the test fails.
func (d *dockerd) run(t *testing.T, name, image string, env []string, args ...string) *container {
	t.Helper()
	runArgs := []string{"run", "--detach", "--name", name, "--network", "host", "--read-only"}
	for _, e := range env {
		runArgs = append(runArgs, "--env", e)
	}
	runArgs = append(runArgs, image)
	d.must(t, append(runArgs, args...)...)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := d.docker(ctx, "logs", name)
		if err != nil {
			out = err.Error()
		}
		t.Logf("--- container %s output, its periodic stats lines left out (last 8 KB):\n%s", name, tail(withoutStats(out), 8192))
	})
	return &container{d: d, name: name}
}

func (c *container) inspect(t *testing.T, format string) string {
	t.Helper()
	return c.d.must(t, "inspect", "--format", format, c.name)
}

func (c *container) running(t *testing.T) bool {
	t.Helper()
	return c.inspect(t, "{{.State.Running}}") == "true"
}

// wait waits for the container to exit and returns its exit code, or -1 on
// timeout.
func (c *container) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := c.d.docker(ctx, "wait", c.name)
	if ctx.Err() != nil {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	code, err := strconv.Atoi(out)
	if err != nil {
		t.Fatalf("docker wait %s printed %q", c.name, out)
	}
	return code
}

// stop runs `docker stop` with the grace period and returns the exit code and
// how long the stop took.
func (c *container) stop(t *testing.T) (int, time.Duration) {
	t.Helper()
	begin := time.Now()
	c.d.must(t, "stop", "--time", strconv.Itoa(int(stopGrace/time.Second)), c.name)
	took := time.Since(begin)
	code, err := strconv.Atoi(c.inspect(t, "{{.State.ExitCode}}"))
	if err != nil {
		t.Fatalf("exit code of %s: %v", c.name, err)
	}
	return code, took
}

// checkConfinement checks, on the container's process itself, that it runs
// as uid and gid 65532 (real, effective, saved and filesystem ids), in the
// host's network namespace, with a read-only root file system.
func (c *container) checkConfinement(t *testing.T) {
	t.Helper()
	if !c.running(t) {
		t.Fatalf("%s is not running", c.name)
	}
	if ro := c.inspect(t, "{{.HostConfig.ReadonlyRootfs}}"); ro != "true" {
		t.Errorf("%s: read-only root file system %s", c.name, ro)
	}
	pid := c.inspect(t, "{{.State.Pid}}")
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	want := fmt.Sprintf("%d\t%d\t%d\t%d", nonroot, nonroot, nonroot, nonroot)
	seen := 0
	for line := range strings.Lines(string(status)) {
		key, ids, ok := strings.Cut(strings.TrimSpace(line), ":\t")
		if !ok || (key != "Uid" && key != "Gid") {
			continue
		}
		seen++
		if ids != want {
			t.Errorf("%s: process %s has %s %q, want %q", c.name, pid, key, ids, want)
		}
	}
	if seen != 2 {
		t.Errorf("%s: /proc/%s/status has %d Uid and Gid lines, want 2", c.name, pid, seen)
	}
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if ns, err := os.Readlink("/proc/" + pid + "/ns/net"); err != nil || ns != own {
		t.Errorf("%s: network namespace %s (%v), want the host's %s", c.name, ns, err, own)
	}
}
