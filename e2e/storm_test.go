package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/kafka"
	"foodpipe/internal/measure"
	"foodpipe/internal/store"
)

// watchStalls measures the pipeline's stalls as `foodpipe bench
// --protocols` does (measure.StallWatch), until the test ends.
func watchStalls(t *testing.T, p *pipeline) *measure.StallWatch {
	t.Helper()
	cl, err := kgo.NewClient(kafka.ClientOpts(kafka.Options{Brokers: []string{p.addr}})...)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), p.db, store.MaxConns(2))
	if err != nil {
		cl.Close()
		t.Fatal(err)
	}
	w := measure.WatchStalls(kadm.NewClient(cl), st, "food-orders")
	t.Cleanup(func() {
		w.Close()
		st.Close()
		cl.Close()
	})
	return w
}

// A kill storm: three consumer processes, 50 SIGKILLs 0.3–2 s apart at
// random (each victim replaced at once under its id), while 20,000 orders
// flow at 1,000/s, under each group protocol (CONSUMER_GROUP_PROTOCOL).
// Every order is stored exactly once and none reaches the dead-letter topic.
// What bounds the stalls (lag > 0 and no new row) differs:
//
//   - classic: the restarted member takes its place back at once (static
//     membership), so the pipeline never stalls for longer than the session
//     timeout plus 5 s, during the storm or after it.
//   - consumer (KIP-848): the broker refuses the restarted member
//     (UNRELEASED_INSTANCE_ID) until the killed one's session has ended, so
//     a partition whose owners keep being killed waits, session after
//     session, for as long as the storm lasts. Once it is over, the last
//     killed member's session ends and the others learn their new
//     partitions at their next heartbeat, a third of the session timeout
//     later: the pipeline flows again within the session timeout, a
//     heartbeat interval and 5 s of the last kill.
func TestAKillStormNeverStallsTheGroup(t *testing.T) {
	const sessionTimeout = 10 * time.Second
	for _, tt := range []struct {
		protocol string
		// storm bounds every stall; after, the stall under way at the
		// last kill, from the kill on (0: no bound).
		storm, after time.Duration
	}{
		{"classic", sessionTimeout + 5*time.Second, sessionTimeout + 5*time.Second},
		{"consumer", 0, sessionTimeout + sessionTimeout/3 + 5*time.Second},
	} {
		t.Run(tt.protocol, func(t *testing.T) { killStorm(t, tt.protocol, sessionTimeout, tt.storm, tt.after) })
	}
}

// killStorm runs the kill storm with the group protocol protocol and fails
// on a stall longer than storm (unless 0), or that lasts longer than after
// past the last kill.
func killStorm(t *testing.T, protocol string, sessionTimeout, storm, after time.Duration) {
	const (
		orders = 20000
		kills  = 50
	)
	p := newPipeline(t)
	env := append(append([]string{}, p.env...), "CONSUMER_SESSION_TIMEOUT="+sessionTimeout.String(), "CONSUMER_GROUP_PROTOCOL="+protocol)
	consumer := func(id string) *proc { return start(t, id, env, "consume", "--id", id) }
	consumers := []*proc{consumer("c1"), consumer("c2"), consumer("c3")}
	watch := watchStalls(t, p)
	began := time.Now()
	producer := start(t, "producer", p.env, "produce", "--count", fmt.Sprint(orders), "--rate", "1000")

	var log strings.Builder
	for range kills {
		time.Sleep(time.Duration(300+rand.IntN(1700)) * time.Millisecond)
		i := rand.IntN(len(consumers))
		consumers[i].Signal(syscall.SIGKILL)
		consumers[i].wait(5 * time.Second)
		fmt.Fprintf(&log, " %s@%.1fs", consumers[i].Name, time.Since(began).Seconds())
		// The replacement comes back under the same id, as a restarted
		// container or a supervised process does.
		consumers[i] = consumer(fmt.Sprintf("c%d", i+1))
	}
	lastKillAt := time.Now()
	lastKill := lastKillAt.Sub(began)
	t.Logf("%s protocol: %d kills, the last at %.1fs:%s", protocol, kills, lastKill.Seconds(), log.String())
	if code := producer.wait(time.Minute); code != 0 {
		t.Fatalf("producer exited %d", code)
	}
	p.checkEveryOrderOnce(t, orders)
	done := time.Since(began)
	watch.Close()

	for _, s := range watch.Stalls(time.Second) {
		t.Logf("stall of %.1fs from %.1fs", s.Took.Seconds(), s.From.Sub(began).Seconds())
	}
	longest := watch.Longest().Took
	lp := watch.LongestPartition()
	part, partLongest := lp.Partition, lp.Took
	stalledAfter := watch.StalledAfter(lastKillAt)
	stormBound := "none"
	if storm > 0 {
		stormBound = storm.String()
	}
	t.Logf("%s protocol: longest stall %.1fs (bound %s), still stalled %.1fs after the last kill (bound %v), longest of one partition %.1fs (partition %d); every order stored once after %.1fs",
		protocol, longest.Seconds(), stormBound, stalledAfter.Seconds(), after.Round(100*time.Millisecond), partLongest.Seconds(), part, done.Seconds())
	if storm > 0 && longest > storm {
		t.Errorf("the pipeline stalled for %.1fs, more than the %s protocol's bound (%v)", longest.Seconds(), protocol, storm)
	}
	if stalledAfter > after {
		t.Errorf("the pipeline was still stalled %.1fs after the last kill, more than the %s protocol's bound (%v)", stalledAfter.Seconds(), protocol, after)
	}
	for _, c := range consumers {
		if code, took := c.stop(syscall.SIGTERM, 15*time.Second); code != 0 {
			t.Errorf("%s: SIGTERM exit %d after %v", c.Name, code, took)
		}
	}
}
