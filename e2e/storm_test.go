package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/kafka"
)

// stallWatch samples the pipeline every 100 ms and measures its stalls: the
// stretches of time with orders on the topic not yet in the table (lag > 0)
// and no new row stored.
type stallWatch struct {
	mu     sync.Mutex
	stalls []stall
	since  time.Time // start of the current stall; zero when flowing
	stop   chan struct{}
	done   chan struct{}

	// The same, partition by partition: a partition stalls while it has
	// orders not in the table and gets no new row, whatever the others do.
	partSince   map[int32]time.Time
	partLongest map[int32]time.Duration
}

type stall struct {
	from time.Time
	took time.Duration
}

func watchStalls(t *testing.T, p *pipeline) *stallWatch {
	t.Helper()
	cl, err := kgo.NewClient(kafka.ClientOpts(kafka.Options{Brokers: []string{p.addr}})...)
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	conn, err := pgx.Connect(context.Background(), p.db)
	if err != nil {
		t.Fatal(err)
	}
	w := &stallWatch{stop: make(chan struct{}), done: make(chan struct{}),
		partSince: map[int32]time.Time{}, partLongest: map[int32]time.Duration{}}
	go func() {
		defer close(w.done)
		defer cl.Close()
		defer conn.Close(context.Background())
		var last int64 = -1
		lastPart := map[int32]int64{}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				w.sample(time.Now(), true, nil) // close open stalls
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ends, err := adm.ListEndOffsets(ctx, "food-orders")
			var produced int64
			ends.Each(func(o kadm.ListedOffset) { produced += o.Offset })
			storedPart := map[int32]int64{}
			if err == nil {
				var rows pgx.Rows
				rows, err = conn.Query(ctx, "SELECT kafka_partition, count(*) FROM orders GROUP BY 1")
				if err == nil {
					var part int32
					var n int64
					_, err = pgx.ForEachRow(rows, []any{&part, &n}, func() error { storedPart[part] = n; return nil })
				}
			}
			cancel()
			if err != nil {
				continue // a sample lost to load; the next one decides
			}
			var stored int64
			flowing := map[int32]bool{}
			ends.Each(func(o kadm.ListedOffset) {
				n := storedPart[o.Partition]
				stored += n
				flowing[o.Partition] = n > lastPart[o.Partition] || n >= o.Offset
				lastPart[o.Partition] = n
			})
			w.sample(time.Now(), stored > last || stored >= produced, flowing)
			last = stored
		}
	}()
	t.Cleanup(w.close)
	return w
}

// sample ends the current stall when the pipeline is flowing (a new row,
// or no lag), and starts one otherwise.
func (w *stallWatch) sample(now time.Time, flowing bool, parts map[int32]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, since := range w.partSince {
		if parts == nil || parts[p] {
			w.partLongest[p] = maxDur(w.partLongest[p], now.Sub(since))
			delete(w.partSince, p)
		}
	}
	for p, ok := range parts {
		if _, stalled := w.partSince[p]; !ok && !stalled {
			w.partSince[p] = now
		}
	}
	if flowing {
		if !w.since.IsZero() {
			w.stalls = append(w.stalls, stall{from: w.since, took: now.Sub(w.since)})
			w.since = time.Time{}
		}
		return
	}
	if w.since.IsZero() {
		w.since = now
	}
}

// longestPartitionStall is the longest stall of any one partition.
func (w *stallWatch) longestPartitionStall() (int32, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var part int32
	var longest time.Duration
	for p, d := range w.partLongest {
		if d > longest {
			part, longest = p, d
		}
	}
	return part, longest
}

func (w *stallWatch) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// stalledAfter is how long after at the pipeline was still stalled: the end
// of the stall open at at, 0 when it was flowing then.
func (w *stallWatch) stalledAfter(at time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var d time.Duration
	for _, s := range w.stalls {
		if end := s.from.Add(s.took); !s.from.After(at) && end.After(at) {
			d = maxDur(d, end.Sub(at))
		}
	}
	return d
}

// report returns the stalls of at least min, and the longest of all.
func (w *stallWatch) report(min time.Duration) ([]stall, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var long []stall
	var max time.Duration
	for _, s := range w.stalls {
		if s.took >= min {
			long = append(long, s)
		}
		max = maxDur(max, s.took)
	}
	return long, max
}

func maxDur(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
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
	watch.close()

	long, longest := watch.report(time.Second)
	for _, s := range long {
		t.Logf("stall of %.1fs from %.1fs", s.took.Seconds(), s.from.Sub(began).Seconds())
	}
	part, partLongest := watch.longestPartitionStall()
	stalledAfter := watch.stalledAfter(lastKillAt)
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
