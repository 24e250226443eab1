package harness_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"foodpipe/internal/consumer"
	"foodpipe/internal/harness"
)

// echo serves a line-echo on loopback for the proxy to forward to.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends a line through c and reads it back.
func roundTrip(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err == nil && line != "ping\n" {
		return errors.New("echoed " + line)
	}
	return err
}

// The cut proxy forwards until cut; a cut drops the open connections and
// refuses new ones; mended, it forwards again.
func TestTheCutProxyCutsAndMends(t *testing.T) {
	p, err := harness.NewCutProxy(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	open, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := roundTrip(open); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Cut()
	if !p.IsCut() {
		t.Error("IsCut is false after Cut")
	}
	if err := roundTrip(open); err == nil {
		t.Error("a connection open before the cut still works")
	}
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		if roundTrip(c) == nil {
			t.Error("a new connection works while cut")
		}
		c.Close()
	}
	p.Mend()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c); err != nil {
		t.Errorf("after Mend: %v", err)
	}
}

// Each consumer child serves its metrics and readiness on an address of
// its own; a child started without one says so instead of hanging. A
// consumer sets its soft memory limit unless GOMEMLIMIT does.
func TestConsumerChildrenServeMetricsApart(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	pl := start(t, harness.EmbeddedBroker, &events{})
	a, err := pl.SpawnConsumer("consumer-a", nil, "GOMEMLIMIT=")
	if err != nil {
		t.Fatal(err)
	}
	b, err := pl.SpawnConsumer("consumer-b", nil, "GOMEMLIMIT=100MiB")
	if err != nil {
		t.Fatal(err)
	}
	if a.MetricsAddr == "" || a.MetricsAddr == b.MetricsAddr {
		t.Fatalf("metrics addresses %q and %q, want two of their own", a.MetricsAddr, b.MetricsAddr)
	}
	ctx := context.Background()
	memLimit := map[*harness.Process]float64{a: float64(consumer.MemoryLimit(pl.Config.BatchSize)), b: 100 << 20}
	for _, c := range []*harness.Process{a, b} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			fams, err := c.Metrics(ctx)
			ready, rerr := c.Ready(ctx)
			if err == nil && rerr == nil && ready {
				if v, ok := harness.Gauge(fams, "foodpipe_db_breaker_open"); !ok || v != 0 {
					t.Errorf("%s: foodpipe_db_breaker_open = %v, %v; want 0", c.Name, v, ok)
				}
				if v, ok := harness.Gauge(fams, "go_gc_gomemlimit_bytes"); !ok || v != memLimit[c] {
					t.Errorf("%s: go_gc_gomemlimit_bytes = %v, %v; want %v", c.Name, v, ok, memLimit[c])
				}
				if _, ok := harness.Gauge(fams, "no_such_metric"); ok {
					t.Errorf("%s: a metric that does not exist was found", c.Name)
				}
				break
			}
			if c.Ended() || time.Now().After(deadline) {
				t.Fatalf("%s: metrics %v, ready %v %v\n%s", c.Name, err, ready, rerr, c.LogTail(2000))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	quiet, err := pl.Spawn("quiet", pl.ChildEnv(nil), "config")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := quiet.Metrics(ctx); !errors.Is(err, harness.ErrNoMetricsAddr) {
		t.Errorf("Metrics of a child with no METRICS_ADDR = %v", err)
	}
	if _, err := quiet.Ready(ctx); !errors.Is(err, harness.ErrNoMetricsAddr) {
		t.Errorf("Ready of a child with no METRICS_ADDR = %v", err)
	}
	_ = quiet.Wait()
	// Killed rather than stopped: this test is not about a clean leave,
	// which costs seconds of the group's time per member.
	for _, c := range []*harness.Process{a, b} {
		_ = c.Signal(syscall.SIGKILL)
		_ = c.Wait()
	}
}
