// Package e2e proves foodpipe's delivery guarantees with real processes: the
// foodpipe binary runs as broker, producer and consumers, and the tests kill,
// stop and restart them, cut their database, and count what arrives.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/harness"
	"foodpipe/internal/kafka"
)

// bin is the foodpipe binary under test, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	// Every test here runs real processes for seconds to minutes: the
	// short tier (make test-short) leaves the package to make test.
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: real processes; make test runs them")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "foodpipe-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "foodpipe")
	build := exec.Command("go", "build", "-o", bin, "foodpipe/cmd/foodpipe")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build foodpipe:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one running foodpipe process.
type proc struct{ *harness.Process }

// start runs `foodpipe args...` with exactly the given environment, in a
// directory of its own (no .env file is read). A failed test shows its output.
func start(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	hp, err := harness.Spawn(harness.Command{Name: name, Exe: bin, Args: args, Dir: t.TempDir(),
		Env: append([]string{"PATH=" + os.Getenv("PATH"), "STATS_INTERVAL=1s"}, env...)})
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{hp}
	t.Cleanup(func() {
		if !p.Ended() {
			_ = p.Signal(syscall.SIGKILL)
			_ = p.Wait()
		}
		if t.Failed() {
			t.Logf("--- %s output, its periodic stats lines left out (last 8 KB):\n%s", p.Name, tail(withoutStats(p.Log()), 8192))
		}
	})
	return p
}

func (p *proc) exited() bool { return p.Ended() }

// wait waits for the process to exit and returns its exit code, or -1 on timeout.
func (p *proc) wait(timeout time.Duration) int {
	select {
	case <-p.Done():
		return p.ExitCode()
	case <-time.After(timeout):
		return -1
	}
}

// stop sends sig and returns the exit code and how long the exit took.
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) (int, time.Duration) {
	begin := time.Now()
	_ = p.Signal(sig)
	code := p.wait(timeout)
	return code, time.Since(begin)
}

// withoutStats drops the periodic stats lines, which would crowd out what
// happened from a failure's report.
func withoutStats(out string) string {
	var b strings.Builder
	for line := range strings.Lines(out) {
		if !strings.Contains(line, `"msg":"consumer stats"`) && !strings.Contains(line, `"msg":"producer stats"`) {
			b.WriteString(line)
		}
	}
	return b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startBroker runs `foodpipe broker` on a free port with a data dir, and
// waits until it serves.
func startBroker(t *testing.T, addr, dataDir string) *proc {
	t.Helper()
	p := start(t, "broker", nil, "broker", "--listen", addr, "--data-dir", dataDir)
	if err := p.WaitListening(context.Background(), addr, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	return p
}

// eventually polls cond until it holds or the time is up.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// withConn runs fn on a new connection to the database at url, within 10 s.
func withConn(t *testing.T, url string, fn func(ctx context.Context, conn *pgx.Conn) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := fn(ctx, conn); err != nil {
		t.Fatal(err)
	}
}

func query[T any](t *testing.T, url, sql string, args ...any) T {
	t.Helper()
	var v T
	withConn(t, url, func(ctx context.Context, conn *pgx.Conn) error {
		if err := conn.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
		return nil
	})
	return v
}

// withAdmin runs fn with an admin client of the broker at addr.
func withAdmin(t *testing.T, addr string, fn func(adm *kadm.Client)) {
	t.Helper()
	cl, err := kgo.NewClient(kafka.ClientOpts(kafka.Options{Brokers: []string{addr}})...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fn(kadm.NewClient(cl))
}

// storedCount is the number of rows in orders, 0 before the table exists.
func storedCount(t *testing.T, url string) int {
	t.Helper()
	return query[int](t, url, "SELECT CASE WHEN to_regclass('orders') IS NULL THEN 0 ELSE (SELECT count(*) FROM orders)::int END")
}

// topicMessages sums the messages of a topic over its partitions (0 when it
// does not exist).
func topicMessages(t *testing.T, addr, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var info kafka.TopicInfo
	var err error
	withAdmin(t, addr, func(adm *kadm.Client) { info, err = kafka.DescribeTopic(ctx, adm, topic) })
	if err != nil {
		t.Fatalf("describe %s: %v", topic, err)
	}
	var n int64
	for _, p := range info.Partitions {
		n += p.HighWatermark - p.StartOffset
	}
	return n
}

// topicOrderIDs reads every order id on the topic, from the order_id header.
func topicOrderIDs(t *testing.T, addr, topic string, want int) map[string]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ids := map[string]int{}
	n := 0
	for n < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			n++
			for _, h := range r.Headers {
				if h.Key == "order_id" {
					ids[string(h.Value)]++
				}
			}
		})
	}
	return ids
}

// groupMembers returns the members of the consumers' group by consumer id
// (the client id without its "foodpipe-" prefix), with the number of
// partitions each owns.
func groupMembers(t *testing.T, addr string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var groups kadm.DescribedGroups
	var err error
	withAdmin(t, addr, func(adm *kadm.Client) { groups, err = adm.DescribeGroups(ctx, "order-processors") })
	if err != nil {
		t.Fatalf("describe group: %v", err)
	}
	out := map[string]int{}
	for _, m := range groups["order-processors"].Members {
		n := 0
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range a.Topics {
				n += len(tp.Partitions)
			}
		}
		out[strings.TrimPrefix(m.ClientID, "foodpipe-")] = n
	}
	return out
}
