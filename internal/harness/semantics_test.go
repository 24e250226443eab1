package harness_test

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"foodpipe/internal/harness"
)

// A process that stopped (SIGSTOP) is held, as a member stopped at its
// crash point is; KillAtOnce kills the held processes, and AwaitHeld tells
// one that ended before it was held.
func TestHeldProcessesAreKilledAtOnce(t *testing.T) {
	spawn := func() *harness.Process {
		t.Helper()
		p, err := harness.Spawn(harness.Command{Name: "sleeper", Exe: "sleep", Args: []string{"30"}, Env: os.Environ()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Signal(syscall.SIGKILL) })
		return p
	}
	a, b := spawn(), spawn()
	if a.Stopped() {
		t.Fatal("a running process reads as stopped")
	}
	ctx := context.Background()
	if err := harness.AwaitHeld(ctx, []*harness.Process{a, b}, 200*time.Millisecond); err == nil {
		t.Fatal("AwaitHeld returned with neither process stopped")
	}
	for _, p := range []*harness.Process{a, b} {
		if err := p.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	if err := harness.AwaitHeld(ctx, []*harness.Process{a, b}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	at, err := harness.KillAtOnce([]*harness.Process{a, b})
	if err != nil || len(at) != 2 || at[1].Before(at[0]) {
		t.Fatalf("KillAtOnce = %v, %v", at, err)
	}
	for _, p := range []*harness.Process{a, b} {
		if err := p.Err(); err == nil || err.Error() != "signal: killed" {
			t.Errorf("%s ended %v, want killed", p.Name, err)
		}
	}
	c := spawn()
	_ = c.Signal(syscall.SIGTERM)
	if err := harness.AwaitHeld(ctx, []*harness.Process{c}, 5*time.Second); err == nil {
		t.Error("AwaitHeld took a process that ended for a held one")
	}
}
