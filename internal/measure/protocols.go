package measure

// The two consumer group protocols side by side (CONSUMER_GROUP_PROTOCOL):
// the same changes of the group, under classic and then under KIP-848, and
// what each cost the orders flowing through it.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/order"
	"foodpipe/internal/producer"
)

// The scenarios of the protocols phase, in the order they run under each
// protocol.
const (
	// ScenarioStorm: three members, ProtocolOptions.Kills SIGKILLs 0.3–2 s
	// apart at random, each victim started again at once under its id.
	ScenarioStorm = "kill storm"
	// ScenarioHandOver: one of three members stopped on purpose (SIGTERM)
	// a third of the way through the orders, and not started again.
	ScenarioHandOver = "hand-over"
	// ScenarioJoin: a third member joins two a third of the way through
	// the orders.
	ScenarioJoin = "member joins"
)

// ProtocolScenarios are the scenarios in the order they run.
var ProtocolScenarios = []string{ScenarioStorm, ScenarioHandOver, ScenarioJoin}

const (
	// protocolPartitions are the partitions of each scenario's topic.
	protocolPartitions = 3
	// StopAtLeast is the shortest stall of a partition that counts as the
	// partition stopped, three samples: a partition flowing at a few
	// hundred orders a second gets rows more often, and a partition handed
	// from one member to another waits longer.
	StopAtLeast = 300 * time.Millisecond
	// ChangeWindow is how long after a change of the group a partition
	// that begins to stall counts as stopped by it: a member learns of a
	// change at its next heartbeat, at most 5 s later under either
	// protocol with the default session timeout.
	ChangeWindow = 6 * time.Second
)

// ProtocolOptions say how big the protocols phase is.
type ProtocolOptions struct {
	// Orders are produced in each scenario, at Rate orders/s.
	Orders int
	Rate   float64
	// Kills are the SIGKILLs of the kill storm.
	Kills int
}

// BenchProtocols is the protocols phase: each scenario under each protocol.
type BenchProtocols struct {
	Partitions int     `json:"partitions"`
	Orders     int     `json:"orders"`
	Rate       float64 `json:"rate"`
	Kills      int     `json:"kills"`
	// SessionTimeout is the members' (CONSUMER_SESSION_TIMEOUT), seconds.
	SessionTimeout float64 `json:"session_timeout_s"`
	// StopAtLeast and ChangeWindow, seconds: how a partition stopped by a
	// change is told (StopAtLeast, ChangeWindow).
	StopAtLeast  float64            `json:"stop_at_least_s"`
	ChangeWindow float64            `json:"change_window_s"`
	Runs         []BenchProtocolRun `json:"runs"`
}

// BenchProtocolRun is one scenario under one protocol. Times are seconds.
type BenchProtocolRun struct {
	Protocol string `json:"protocol"`
	Scenario string `json:"scenario"`
	// Members at the start; Changes of the group (a member killed and
	// started again, stopped, or added).
	Members int `json:"members"`
	Changes int `json:"changes"`
	// LongestStall is the whole pipeline's longest stall (lag > 0 and no
	// new row stored), from StallAt seconds into the run.
	LongestStall float64 `json:"longest_stall_s"`
	StallAt      float64 `json:"longest_stall_at_s"`
	// LongestPartitionStall is the longest stall of one partition.
	LongestPartitionStall float64 `json:"longest_partition_stall_s"`
	Partition             int32   `json:"longest_partition"`
	// Stopped is, for each change, how many partitions began a stall of
	// at least StopAtLeast within ChangeWindow of it (or before the next).
	Stopped []int `json:"partitions_stopped_per_change"`
	// FlowingAgain is how long after the last change every partition
	// flowed again.
	FlowingAgain float64 `json:"flowing_again_after_last_change_s"`
	// Produced are the orders acknowledged; Stored the rows, Doubles the
	// order ids or Kafka positions stored more than once, DeadLetters
	// the group's: every order once is Stored = Produced = Orders and
	// neither doubles nor dead letters.
	Produced    int64   `json:"produced"`
	Stored      int64   `json:"stored"`
	Doubles     int     `json:"doubles"`
	DeadLetters int64   `json:"dead_letters"`
	Took        float64 `json:"took_s"`
}

// EveryOrderOnce says whether the run stored each of its orders exactly once.
func (r BenchProtocolRun) EveryOrderOnce(orders int) bool {
	return r.Produced == int64(orders) && r.Stored == r.Produced && r.Doubles == 0 && r.DeadLetters == 0
}

// StoppedMean and StoppedMax are the partitions stopped per change.
func (r BenchProtocolRun) StoppedMean() float64 {
	if len(r.Stopped) == 0 {
		return 0
	}
	n := 0
	for _, s := range r.Stopped {
		n += s
	}
	return float64(n) / float64(len(r.Stopped))
}

// StoppedMax is the most partitions one change stopped.
func (r BenchProtocolRun) StoppedMax() int {
	m := 0
	for _, s := range r.Stopped {
		m = max(m, s)
	}
	return m
}

// protocols runs every scenario under classic, then under KIP-848.
func (b *bench) protocols(ctx context.Context, o ProtocolOptions) (BenchProtocols, error) {
	rep := BenchProtocols{Partitions: protocolPartitions, Orders: o.Orders, Rate: o.Rate, Kills: o.Kills, SessionTimeout: b.cfg.SessionTimeout.Seconds(),
		StopAtLeast: StopAtLeast.Seconds(), ChangeWindow: ChangeWindow.Seconds()}
	for _, protocol := range config.GroupProtocols {
		for _, scenario := range ProtocolScenarios {
			r, err := b.protocolRun(ctx, o, protocol, scenario)
			if err != nil {
				return rep, fmt.Errorf("%s under %s: %w", scenario, protocol, err)
			}
			rep.Runs = append(rep.Runs, r)
			fmt.Fprintf(b.out, "protocol  %s, %s: longest stall %.1fs, of a partition %.1fs, partitions stopped per change %.1f (most %d), flowing again %.1fs after the last change; %d of %d orders stored, %d doubles\n",
				protocol, scenario, r.LongestStall, r.LongestPartitionStall, r.StoppedMean(), r.StoppedMax(), r.FlowingAgain, r.Stored, r.Produced, r.Doubles)
		}
	}
	return rep, nil
}

// protocolRun runs one scenario under one protocol, on a topic and group of
// its own and an empty table, and measures it.
func (b *bench) protocolRun(ctx context.Context, o ProtocolOptions, protocol, scenario string) (BenchProtocolRun, error) {
	r := BenchProtocolRun{Protocol: protocol, Scenario: scenario, Members: 3}
	if scenario == ScenarioJoin {
		r.Members = 2
	}
	if err := b.st.Bench().Reset(ctx); err != nil {
		return r, err
	}
	b.drains++
	topic := fmt.Sprintf("bench-protocols-%d", b.drains)
	cfg := b.cfg
	cfg.Topic, cfg.Partitions, cfg.ProducerRate = topic, protocolPartitions, o.Rate
	// The producer's client makes the topic, so that the members find it
	// and the watch samples its partitions from the start.
	cl, err := b.pl.ProducerClient(ctx, cfg, nil)
	if err != nil {
		return r, err
	}
	defer cl.Close()
	group := "bench-" + topic
	g, err := b.pl.SpawnGroup(topic, group, r.Members, func(c *config.Config) {
		b.child(c)
		c.Partitions, c.GroupProtocol = protocolPartitions, protocol
	})
	if err != nil {
		return r, err
	}
	defer g.Stop()
	if _, err := g.AllAssigned(ctx, time.Minute, r.Members); err != nil {
		return r, err
	}
	adm, closeAdm, err := b.pl.Admin(ctx)
	if err != nil {
		return r, err
	}
	defer closeAdm()
	watch := WatchStalls(adm, b.st, topic)
	defer watch.Close()

	began := time.Now()
	p := producer.New(cl, order.NewGenerator(uint64(max(b.drains, 0)), nil), producer.Config{Topic: topic, Count: o.Orders, Rate: o.Rate}, b.log)
	produced := make(chan error, 1)
	go func() { produced <- p.Run(ctx) }()

	var changes []time.Time
	third := time.Duration(float64(o.Orders) / o.Rate / 3 * float64(time.Second))
	switch scenario {
	case ScenarioStorm:
		for range o.Kills {
			if err := sleep(ctx, time.Duration(300+rand.IntN(1700))*time.Millisecond); err != nil { //nolint:gosec // when to kill, not a secret
				return r, err
			}
			i := rand.IntN(len(g.Kids))           //nolint:gosec // whom to kill, not a secret
			_ = g.Kids[i].Signal(syscall.SIGKILL) // an ended member is started again all the same
			select {
			case <-g.Kids[i].Done():
			case <-time.After(5 * time.Second):
				return r, fmt.Errorf("%s outlived its SIGKILL by 5s", g.Kids[i].Name)
			}
			changes = append(changes, time.Now())
			if _, err := g.Restart(i); err != nil {
				return r, err
			}
		}
	case ScenarioHandOver:
		if err := sleep(ctx, third); err != nil {
			return r, err
		}
		changes = append(changes, time.Now())
		if err := g.Kids[len(g.Kids)-1].Stop(15 * time.Second); err != nil {
			return r, fmt.Errorf("stop %s: %w", g.Kids[len(g.Kids)-1].Name, err)
		}
	case ScenarioJoin:
		if err := sleep(ctx, third); err != nil {
			return r, err
		}
		changes = append(changes, time.Now())
		if _, err := g.Add(); err != nil {
			return r, err
		}
	}
	if err := <-produced; err != nil {
		return r, fmt.Errorf("produce: %w", err)
	}
	r.Produced = p.Stats().Acked
	// Every order stored, however long the group takes to heal: a
	// KIP-848 group's member killed last is waited for a session.
	if err := b.waitStored(ctx, g, r.Produced, 3*time.Minute); err != nil {
		return r, err
	}
	watch.Close()
	r.Took = time.Since(began).Seconds()
	r.Changes = len(changes)

	l := watch.Longest()
	r.LongestStall = l.Took.Seconds()
	if l.Took > 0 {
		r.StallAt = l.From.Sub(began).Seconds()
	}
	lp := watch.LongestPartition()
	r.LongestPartitionStall, r.Partition = lp.Took.Seconds(), lp.Partition
	for i, at := range changes {
		to := at.Add(ChangeWindow)
		if i+1 < len(changes) && changes[i+1].Before(to) {
			to = changes[i+1]
		}
		r.Stopped = append(r.Stopped, watch.PartitionsStopped(at, to, StopAtLeast))
	}
	if len(changes) > 0 {
		r.FlowingAgain = watch.FlowingAgainAfter(changes[len(changes)-1], ChangeWindow, StopAtLeast).Seconds()
	}

	if r.Stored, err = b.st.Count(ctx); err != nil {
		return r, err
	}
	repeats, err := b.st.Repeats(ctx, began.Add(-time.Minute), 100)
	if err != nil {
		return r, err
	}
	r.Doubles = len(repeats)
	tally, err := b.st.Tally(ctx, group)
	if err != nil {
		return r, err
	}
	r.DeadLetters = tally.DeadLetters
	return r, nil
}

// waitStored waits until the table holds n orders and the group's stored
// offsets cover them; the members may have ended and been replaced, so
// only the time limits it.
func (b *bench) waitStored(ctx context.Context, g *harness.Group, n int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		covered, err := b.st.Covered(ctx, g.Name)
		if err != nil {
			return err
		}
		if covered >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the group covered %d of %d orders in %v:\n%s", covered, n, limit, g.LogTail())
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// sleep waits d, or less if ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// protocolTargets hold each run to what the kill storm's e2e test holds the
// protocols to: every order once; under classic no stall longer than the
// session timeout and 5 s; under KIP-848 every partition flowing again
// within the session timeout, a heartbeat interval (a third of it) and 5 s
// of the last change.
func protocolTargets(p *BenchProtocols) []BenchTarget {
	var ts []BenchTarget
	session := p.SessionTimeout
	for _, r := range p.Runs {
		at := fmt.Sprintf("%s, %s", r.Protocol, r.Scenario)
		ts = append(ts, BenchTarget{Name: "every order stored once, " + at, Want: fmt.Sprintf("%d once, no doubles", p.Orders),
			Got: fmt.Sprintf("%d of %d produced stored, %d doubles, %d dead letters", r.Stored, r.Produced, r.Doubles, r.DeadLetters),
			Met: r.EveryOrderOnce(p.Orders)})
		switch r.Protocol {
		case config.GroupProtocolClassic:
			most := session + 5
			ts = append(ts, BenchTarget{Name: "longest stall, " + at, Want: fmt.Sprintf("≤ %.1fs", most),
				Got: fmt.Sprintf("%.1fs", r.LongestStall), Met: r.LongestStall <= most})
		case config.GroupProtocolConsumer:
			most := session + min(session/3, 5) + 5
			ts = append(ts, BenchTarget{Name: "flowing again after the last change, " + at, Want: fmt.Sprintf("≤ %.1fs", most),
				Got: fmt.Sprintf("%.1fs", r.FlowingAgain), Met: r.FlowingAgain <= most})
		}
	}
	return ts
}
