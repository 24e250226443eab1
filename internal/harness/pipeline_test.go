package harness_test

import (
	"context"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"foodpipe/internal/cli"
	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/order"
	"foodpipe/internal/producer"
	"foodpipe/internal/store/dbtest"
	"foodpipe/internal/wire"
)

// envRunAsCLI makes the test binary act as the foodpipe binary, which the
// harness starts as children through os.Executable.
const envRunAsCLI = "FOODPIPE_TEST_RUN_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(envRunAsCLI) == "1" {
		os.Exit(cli.Main(os.Args[1:], ""))
	}
	os.Exit(m.Run())
}

// events collects what the harness tells.
type events struct {
	mu  sync.Mutex
	all []harness.Event
}

func (e *events) observe(ev harness.Event) { e.mu.Lock(); e.all = append(e.all, ev); e.mu.Unlock() }

func (e *events) find(match func(harness.Event) bool) (harness.Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		if match(ev) {
			return ev, true
		}
	}
	return nil, false
}

func start(t *testing.T, mode harness.BrokerMode, ev *events) *harness.Pipeline {
	t.Helper()
	t.Setenv(envRunAsCLI, "1")
	cfg, err := config.Load(func(k string) (string, bool) {
		v, ok := map[string]string{"DATABASE_URL": dbtest.New(t), "KAFKA_PARTITIONS": "3", "LOG_LEVEL": "warn"}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pl, err := harness.Start(ctx, harness.Options{Config: cfg, Broker: mode, UserDatabase: true, Observe: ev.observe})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pl.Close)
	return pl
}

func produce(t *testing.T, pl *harness.Pipeline, n int, seed uint64) {
	t.Helper()
	ctx := context.Background()
	cl, err := pl.ProducerClient(ctx, pl.Config, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p := producer.New(cl, order.NewGenerator(seed, nil), producer.Config{Topic: pl.Config.Topic, Count: n}, slog.New(slog.DiscardHandler))
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

func waitStored(t *testing.T, pl *harness.Pipeline, want int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n, err := pl.Store.Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == want {
			return
		}
		if n > want || time.Now().After(deadline) {
			t.Fatalf("stored %d orders, want %d", n, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A child broker restarts with its messages and committed offsets kept: a
// consumer child resumes where it was, and nothing is stored twice.
func TestChildBrokerRestartsWithItsData(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	ev := &events{}
	pl := start(t, harness.ChildBroker, ev)
	c, err := pl.SpawnConsumer("consumer-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	produce(t, pl, 20, 1)
	waitStored(t, pl, 20, 30*time.Second)

	if err := pl.RestartBroker(context.Background(), 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, ok := ev.find(func(e harness.Event) bool { _, ok := e.(harness.BrokerRestarted); return ok }); !ok {
		t.Error("no BrokerRestarted event")
	}
	produce(t, pl, 20, 2)
	waitStored(t, pl, 40, 60*time.Second)
	if c.Ended() {
		t.Fatalf("the consumer ended across the restart: %v\n%s", c.Err(), c.LogTail(2000))
	}
}

// A killed child is told as ProcessExited, with the signal as its end.
func TestKilledChildIsToldAsAnEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	ev := &events{}
	pl := start(t, harness.EmbeddedBroker, ev)
	g, err := pl.SpawnGroup(pl.Config.Topic, "harness-test", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.FirstAssigned(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	victim := g.Kids[0]
	if err := victim.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := victim.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("a SIGKILLed consumer ended with %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		e, ok := ev.find(func(e harness.Event) bool { x, ok := e.(harness.ProcessExited); return ok && x.Name == victim.Name })
		if ok {
			if x := e.(harness.ProcessExited); x.Pid != victim.Pid() || x.Err == nil {
				t.Errorf("event %+v, want pid %d and an error", x, victim.Pid())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no ProcessExited event for the killed consumer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := g.Exited(); err == nil || !strings.Contains(err.Error(), victim.Name) {
		t.Errorf("Group.Exited = %v, want the killed member named", err)
	}
	// The other member ends cleanly when stopped: SIGTERM, exit code 0.
	if err := g.Kids[1].Stop(10 * time.Second); err != nil {
		t.Errorf("a stopped consumer ended with %v, want exit code 0\n%s", err, g.Kids[1].LogTail(2000))
	}
}

// Restarting the broker needs a broker the harness runs as a child.
func TestRestartNeedsAChildBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	pl := start(t, harness.EmbeddedBroker, &events{})
	if err := pl.RestartBroker(context.Background(), 0); err == nil || !strings.Contains(err.Error(), "not a child") {
		t.Fatalf("RestartBroker on an embedded broker = %v", err)
	}
}

// A child's CPU time can be read while it runs, and agrees with what the
// kernel reports once it ends.
func TestProcessCPUSoFar(t *testing.T) {
	p, err := harness.Spawn(harness.Command{Name: "busy", Exe: "/bin/sh", Args: []string{"-c", "i=0; while [ $i -lt 30000000 ]; do i=$((i+1)); done"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second) //nolint:errcheck // stopped below; this is for a failure
	deadline := time.Now().Add(20 * time.Second)
	for p.CPUSoFar() < 100*time.Millisecond {
		if time.Now().After(deadline) || p.Ended() {
			t.Fatalf("CPU so far %v, want it to grow past 100ms", p.CPUSoFar())
		}
		time.Sleep(20 * time.Millisecond)
	}
	so := p.CPUSoFar()
	_ = p.Stop(time.Second)
	if total := p.CPU(); total < so || total > so+time.Second {
		t.Errorf("CPU at the end %v, %v while running", total, so)
	}
}

// The Kafka clients the pipeline builds in this process log where
// Options.ClientLog says, the pipeline and its members where Log says: a
// live view drawn on the terminal the log goes to keeps franz-go's lines off
// it that way. The broker's restart makes the member's clients warn.
func TestTheKafkaClientsLogToClientLog(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	t.Setenv(envRunAsCLI, "1")
	cfg, err := config.Load(func(k string) (string, bool) {
		v, ok := map[string]string{"DATABASE_URL": dbtest.New(t), "LOG_LEVEL": "warn"}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	var own, clients harness.LogBuffer
	ctx := context.Background()
	pl, err := harness.Start(ctx, harness.Options{Config: cfg, Broker: harness.ChildBroker, UserDatabase: true,
		Log: slog.New(slog.NewJSONHandler(&own, nil)), ClientLog: slog.New(slog.NewJSONHandler(&clients, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pl.Close)
	c, err := pl.Consumer(ctx, "consumer-1", wire.NewMetrics(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	produce(t, pl, 5, 1)
	waitStored(t, pl, 5, 30*time.Second)
	if err := pl.RestartBroker(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(clients.String(), `"component":"kgo"`); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("no line of the Kafka clients in ClientLog after the broker's restart:\n%s", clients.String())
			break
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("consumer: %v", err)
	}
	if strings.Contains(own.String(), `"component":"kgo"`) {
		t.Errorf("the Kafka clients' lines are in Log:\n%s", own.String())
	}
}

// A child is given the pipeline's configuration, whatever this process's
// environment says, with the migrations left to the harness and the
// caller's changes; what is not a setting comes last.
func TestAChildIsGivenThePipelinesConfiguration(t *testing.T) {
	t.Setenv("KAFKA_TOPIC", "from-the-environment")
	cfg := config.Default()
	cfg.Topic, cfg.BatchSize, cfg.DatabaseURL = "pipeline-topic", 123, "postgres://u:secret@db:5432/x"
	pl := &harness.Pipeline{Config: cfg}
	env := pl.ChildEnv(func(c *config.Config) { c.LogLevel = slog.LevelWarn }, "GOMEMLIMIT=1GiB")
	if env[len(env)-1] != "GOMEMLIMIT=1GiB" {
		t.Errorf("the environment ends with %q, want what was added", env[len(env)-1])
	}
	child := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		child[k] = v // the last one wins, as it does for the child
	}
	got, err := config.Load(func(k string) (string, bool) { v, ok := child[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	want := cfg
	want.Migrate, want.LogLevel = false, slog.LevelWarn
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the child loads\n%+v\nwant\n%+v", got, want)
	}
}
