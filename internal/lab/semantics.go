package lab

// The delivery-semantics panel: docs/KAFKA-CONCEPTS.md section 8 in the
// lab. The two teaching groups (package semantics) read the orders topic
// beside the orders group; one button holds a member of each of the three
// groups at its crash point, mid-batch, kills the three at one instant and
// starts them again, and the panel counts from the tables what each group
// lost, stored once and stored twice. The members are spawned, held, killed
// and awaited as `demo --semantics` does it (harness.SpawnSemantics).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/semantics"
)

var (
	// ErrNoTeaching: the teaching groups are not running.
	ErrNoTeaching = errors.New("the teaching groups are not running: start them first")
	// ErrNoOrders: the producer is paused, so no member would ever have a
	// batch in hand to be killed in the middle of.
	ErrNoOrders = errors.New("the producer is paused: a member reaches its crash point only with a batch in hand")
)

// Bounds of a kill round: a member reaches its crash point at its next
// batch, a group catches up within seconds; either taking longer means the
// lab is stuck (the database cut, the broker away), and the round says so.
const (
	semHoldLimit   = time.Minute
	semSettleLimit = 3 * time.Minute
	// semScopeMax bounds the orders a round counts (the producer's since the
	// teaching groups started or the last round), the oldest dropped first.
	semScopeMax = 200_000
)

// SemanticsView is the panel as the page shows it.
type SemanticsView struct {
	// Status: off (the teaching groups are not running), running, holding
	// (a member of each group is on its way to its crash point), settling
	// (killed and restarted, the groups catching up), final, failed.
	Status  string            `json:"status"`
	Members []SemanticsMember `json:"members"`
	// Round is the last kill round, nil before the first.
	Round *SemanticsRound `json:"round,omitempty"`
}

// SemanticsMember is the member of a group a round acts on.
type SemanticsMember struct {
	Semantics  semantics.Semantics `json:"semantics"`
	Group      string              `json:"group"`
	ID         string              `json:"id"`
	Pid        int                 `json:"pid"`
	CrashPoint string              `json:"crash_point"`
	// Ended: the member's process ended outside a round (at least once
	// stops when it cannot write, say); Start the teaching groups starts
	// it again.
	Ended bool `json:"ended"`
}

// SemanticsRound is one press of the kill button and what came of it.
type SemanticsRound struct {
	// KilledAt is when the first SIGKILL was sent, SpreadUS the time to the
	// last, in microseconds.
	KilledAt time.Time `json:"killed_at,omitzero"`
	SpreadUS float64   `json:"spread_us"`
	// Since is when the orders counted start: the producer's orders from
	// then until the kill (the offsets below the topic's end just after).
	Since time.Time `json:"since"`
	// Final: every group has read past the kill and the counts no longer
	// change.
	Final  bool             `json:"final"`
	Groups []SemanticsCount `json:"groups"`
	Error  string           `json:"error,omitempty"`
}

// SemanticsCount is one group's count (semantics.Count) and why it came
// out so.
type SemanticsCount struct {
	semantics.Counts
	Why string `json:"why"`
}

// ackedOrder is an order the producer sent, where it landed.
type ackedOrder struct {
	partition int32
	offset    int64
	id        string
}

// semanticsState is what the lab keeps of the panel; Lab.mu guards it.
type semanticsState struct {
	status string
	// procs are the teaching members, one per teaching semantics.
	procs map[semantics.Semantics]*harness.Process
	// ordersID is the orders group's member the last round acted on.
	ordersID string
	since    time.Time
	acked    []ackedOrder
	// resent are orders the user sent again by hand: stored twice by a
	// teaching group for that reason alone, they are left out of the count.
	resent map[string]bool
	round  *SemanticsRound
}

// teachingID names the teaching member of s, as the demo does.
func teachingID(s semantics.Semantics) string { return string(s) + "-1" }

// ackedOrder records an order the producer sent, for the next round's
// count. Call with l.mu held.
func (s *semanticsState) ackedOrder(partition int32, offset int64, id string) {
	if s.status == "" || s.status == "off" {
		return
	}
	s.acked = append(s.acked, ackedOrder{partition, offset, id})
	if len(s.acked) > semScopeMax {
		s.acked = slices.Delete(s.acked, 0, semScopeMax/2)
		s.since = time.Now() // roughly: the count says from when
	}
}

// resend notes an order sent again by hand. Call with l.mu held.
func (s *semanticsState) resend(id string) {
	if s.resent == nil {
		s.resent = map[string]bool{}
	}
	s.resent[id] = true
}

// teachingEdit is a teaching member's configuration in the lab: the
// consumers' database line (through the cut proxy) and session timeout.
func (l *Lab) teachingEdit(c *config.Config) {
	c.DatabaseURL, c.SessionTimeout = l.childDB, l.st.session
}

// StartTeaching starts a member of each teaching group, beside the orders
// group, reading the orders topic from its start; with the groups running,
// it starts again a member whose process ended.
func (l *Lab) StartTeaching() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	sem := &l.st.sem
	fresh := sem.status == "" || sem.status == "off"
	if sem.status == "holding" || sem.status == "settling" {
		return fmt.Errorf("start the teaching groups: a round is %s: %w", sem.status, ErrBusy)
	}
	if fresh {
		sem.procs = map[semantics.Semantics]*harness.Process{}
	}
	started := 0
	for _, s := range semantics.Teaching {
		if p := sem.procs[s]; p != nil && !p.Ended() {
			continue
		}
		p, err := l.pl.SpawnSemantics(s, teachingID(s), false, l.teachingEdit)
		if err != nil {
			return fmt.Errorf("start the teaching groups: %w", err)
		}
		sem.procs[s] = p
		started++
		l.st.event(time.Now(), "process", fmt.Sprintf("%s started (pid %d), group %s: %s", teachingID(s), p.Pid(), semantics.Group(s), cycle[s]))
	}
	if started == 0 {
		return fmt.Errorf("start the teaching groups: %w", ErrAlreadyRunning)
	}
	if fresh {
		sem.status, sem.since, sem.acked, sem.resent = "running", time.Now(), nil, nil
		l.st.facts.teachingStarted++
	}
	return nil
}

// teachingExited tells in the timeline the end of a teaching member's
// process outside a round (a round's kills are its own to tell). Call with
// l.mu held.
func (l *Lab) teachingExited(e harness.ProcessExited) bool {
	sem := &l.st.sem
	for _, s := range semantics.Teaching {
		if p := sem.procs[s]; p != nil && p.Pid() == e.Pid {
			if sem.status != "holding" && sem.status != "settling" {
				how := "exit 0"
				if e.Err != nil {
					how = e.Err.Error()
				}
				l.st.event(e.At, "process", fmt.Sprintf("%s (pid %d) ended: %s; group %s falls behind until it is started again", e.Name, e.Pid, how, semantics.Group(s)))
			}
			return true
		}
	}
	return false
}

// cycle is each semantics' order of steps, as the timeline tells it.
var cycle = map[semantics.Semantics]string{
	semantics.AtMostOnce:  "commit, then write",
	semantics.AtLeastOnce: "write, then commit",
	semantics.ExactlyOnce: "rows and offsets in one transaction, then commit",
}

// KillSemantics starts a kill round: a member of each of the three groups
// (the teaching ones and a consumer of the orders group that owns
// partitions) is replaced by one held at its crash point (stopped, SIGTERM,
// and started again under its id), the three are killed (SIGKILL) at one
// instant once all are held, started again unarmed, and once their groups
// have read past the kill, what each table holds is counted.
func (l *Lab) KillSemantics() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	sem := &l.st.sem
	switch {
	case sem.status == "" || sem.status == "off":
		return fmt.Errorf("kill: %w", ErrNoTeaching)
	case sem.status == "holding" || sem.status == "settling":
		return fmt.Errorf("kill: a round is %s: %w", sem.status, ErrBusy)
	case l.st.paused || l.st.rate == 0:
		return fmt.Errorf("kill: %w", ErrNoOrders)
	}
	ordersID := ""
	for _, id := range l.st.order {
		if m := l.st.members[id]; m.Status == "running" && len(l.st.owned(id)) > 0 {
			ordersID = id
			break
		}
	}
	if ordersID == "" {
		return fmt.Errorf("kill: no running consumer of %s owns a partition: %w", l.cfg.Group, ErrNoSuchConsumer)
	}
	sem.status, sem.ordersID = "holding", ordersID
	sem.round = &SemanticsRound{Since: sem.since, Groups: []SemanticsCount{}}
	l.st.facts.semanticsRounds++
	l.st.event(time.Now(), "fault", fmt.Sprintf("delivery semantics: %s, %s and %s restarted, each to be held at its crash point at its next batch",
		teachingID(semantics.AtMostOnce), teachingID(semantics.AtLeastOnce), ordersID))
	l.wg.Go(func() { l.semanticsRound(ordersID) })
	return nil
}

// semanticsRound runs a round KillSemantics started, to its end.
func (l *Lab) semanticsRound(ordersID string) {
	ctx := l.ctx
	ids := []string{teachingID(semantics.AtMostOnce), teachingID(semantics.AtLeastOnce), ordersID}
	procs, err := l.replaceSemantics(ids, true)
	if err == nil {
		err = harness.AwaitHeld(ctx, procs, semHoldLimit)
	}
	if err != nil && ctx.Err() != nil {
		_, _ = harness.KillAtOnce(procs) // the lab is closing
		return
	}
	if err != nil {
		// Whoever is armed is killed and started again unarmed: the
		// groups go on as before, and the round says why it failed.
		_, _ = harness.KillAtOnce(procs)
		_, rerr := l.replaceSemantics(ids, false)
		l.semanticsFailed(errors.Join(err, rerr))
		return
	}
	at, err := harness.KillAtOnce(procs)
	if err != nil {
		l.semanticsFailed(err)
		return
	}
	// Every order below these offsets was sent before the kill: the round
	// counts those, once every group has read past them.
	cutoff, err := harness.EndOffsets(ctx, l.adm, l.cfg.Topic)
	l.mu.Lock()
	r := l.st.sem.round
	r.KilledAt, r.SpreadUS = at[0], float64(at[len(at)-1].Sub(at[0]).Nanoseconds())/1000
	l.st.sem.status = "settling"
	l.st.event(at[0], "fault", fmt.Sprintf("delivery semantics: %s, %s and %s killed (SIGKILL) at their crash points within %.0f µs",
		ids[0], ids[1], ids[2], r.SpreadUS))
	l.mu.Unlock()
	if err != nil {
		l.semanticsFailed(err)
		return
	}
	if _, err := l.replaceSemantics(ids, false); err != nil {
		l.semanticsFailed(err)
		return
	}
	if err := l.pl.AwaitRead(ctx, l.adm, l.cfg.Topic, semantics.Groups(l.cfg.Group), cutoff, semSettleLimit); err != nil {
		l.semanticsFailed(err)
		return
	}
	l.settleSemantics(ctx, cutoff)
}

// replaceSemantics stops the members ids (SIGTERM: each finishes its batch)
// and starts each again under its id, held at its crash point or unarmed.
// ids are the at-most-once, at-least-once and orders group's members, in
// semantics.All's order.
func (l *Lab) replaceSemantics(ids []string, held bool) ([]*harness.Process, error) {
	if err := l.ctx.Err(); err != nil {
		return nil, err // the lab is closing: its pipeline stops every child
	}
	l.mu.Lock()
	old := make([]*harness.Process, len(ids))
	for i, s := range semantics.All {
		if s == semantics.ExactlyOnce {
			old[i] = l.process(ids[i])
		} else {
			old[i] = l.st.sem.procs[s]
		}
	}
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range old {
		if p != nil {
			wg.Go(func() { _ = p.Stop(10 * time.Second) }) // a killed one has ended already
		}
	}
	wg.Wait()

	l.mu.Lock()
	defer l.mu.Unlock()
	procs := make([]*harness.Process, len(ids))
	var errs []error
	for i, s := range semantics.All {
		edit := l.teachingEdit
		if s == semantics.ExactlyOnce {
			edit = l.consumerEdit
		}
		p, err := l.pl.SpawnSemantics(s, ids[i], held, edit)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		procs[i] = p
		if s == semantics.ExactlyOnce {
			if m := l.st.members[ids[i]]; m != nil {
				m.proc, m.Pid, m.Status, m.Exit = p, p.Pid(), "running", ""
			}
		} else {
			l.st.sem.procs[s] = p
		}
	}
	return slices.DeleteFunc(procs, func(p *harness.Process) bool { return p == nil }), errors.Join(errs...)
}

// settleSemantics counts the round's orders until two counts a tick apart
// agree: at most once writes a batch just after committing it, so a group
// that has read past the kill may still be writing its last batch.
func (l *Lab) settleSemantics(ctx context.Context, cutoff map[int32]int64) {
	var prev []semantics.Counts
	for {
		l.mu.Lock()
		ids := make([]string, 0, len(l.st.sem.acked))
		for _, o := range l.st.sem.acked {
			if o.offset < cutoff[o.partition] && !l.st.sem.resent[o.id] {
				ids = append(ids, o.id)
			}
		}
		l.mu.Unlock()
		c, err := semantics.Count(ctx, l.pl.Store.Pool(), l.cfg.Group, ids)
		if err != nil {
			l.semanticsFailed(err)
			return
		}
		final := prev != nil && fmt.Sprint(prev) == fmt.Sprint(c)
		l.mu.Lock()
		r := l.st.sem.round
		r.Groups = r.Groups[:0]
		for _, g := range c {
			r.Groups = append(r.Groups, SemanticsCount{Counts: g, Why: why(g)})
		}
		if final {
			r.Final, l.st.sem.status = true, "final"
			// The next round counts the orders sent after this one's kill.
			l.st.sem.acked = slices.DeleteFunc(l.st.sem.acked, func(o ackedOrder) bool { return o.offset < cutoff[o.partition] })
			l.st.sem.since = r.KilledAt
			if shown(c) {
				l.st.facts.semanticsShown++
			}
			l.st.event(time.Now(), "fault", fmt.Sprintf("delivery semantics, final counts of %d orders: at most once lost %d, at least once stored %d twice, %s lost %d and stored %d twice",
				c[0].Produced, c[0].Lost, c[1].Twice, l.cfg.Group, c[2].Lost, c[2].Twice))
		}
		l.mu.Unlock()
		if final {
			return
		}
		prev = c
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.tick):
		}
	}
}

// shown: each semantics failed, or held, as it promises.
func shown(c []semantics.Counts) bool {
	return len(c) == 3 && c[0].Lost > 0 && c[0].Twice == 0 && c[1].Twice > 0 && c[1].Lost == 0 && c[2].Lost == 0 && c[2].Twice == 0
}

// why says in a line why a group got what it got.
func why(c semantics.Counts) string {
	switch c.Semantics {
	case semantics.AtMostOnce:
		if c.Lost > 0 {
			return fmt.Sprintf("It committed its batch's offsets, then was killed before writing it: the group resumed after those %d orders, which no one will store.", c.Lost)
		}
		return "Nothing lost: its batch in hand held no order."
	case semantics.AtLeastOnce:
		if c.Twice > 0 {
			return fmt.Sprintf("It wrote its batch, then was killed before committing: the group read those %d orders again from the older offset and stored them a second time.", c.Twice)
		}
		return "Nothing doubled: its batch in hand held no order."
	default:
		if c.Lost == 0 && c.Twice == 0 {
			return "It stored its batch with the next offsets in one transaction, then was killed before telling Kafka: restarted, it resumed from the offsets in PostgreSQL, so nothing was lost or stored twice."
		}
		return fmt.Sprintf("%d lost and %d stored twice: the exactly-once effect did not hold; the invariants panel says where.", c.Lost, c.Twice)
	}
}

// semanticsFailed ends a round with err.
func (l *Lab) semanticsFailed(err error) {
	l.roundFailed("delivery semantics round", err, func(msg string) {
		l.st.sem.status = "failed"
		if r := l.st.sem.round; r != nil {
			r.Error = msg
		}
	})
}

// roundFailed tells that a panel's round (what) failed with err: in the
// log, in the panel (mark, called with l.mu held, sets its status and its
// round's error) and in the events.
func (l *Lab) roundFailed(what string, err error, mark func(msg string)) {
	if l.ctx.Err() != nil {
		return // the lab is closing: no one is watching
	}
	l.log.Warn(what+" failed", slog.Any("err", err))
	l.mu.Lock()
	defer l.mu.Unlock()
	mark(err.Error())
	l.st.event(time.Now(), "fault", what+" failed: "+err.Error())
}

// semanticsView is the panel's part of the snapshot. Call with l.mu held.
func (l *Lab) semanticsView() SemanticsView {
	sem := &l.st.sem
	v := SemanticsView{Status: sem.status, Members: []SemanticsMember{}}
	if v.Status == "" {
		v.Status = "off"
	}
	groups := semantics.Groups(l.cfg.Group)
	for i, s := range semantics.All {
		m := SemanticsMember{Semantics: s, Group: groups[i], CrashPoint: semantics.CrashPoint(s)}
		if s == semantics.ExactlyOnce {
			m.ID = sem.ordersID
			if p := l.process(sem.ordersID); p != nil {
				m.Pid = p.Pid()
			}
		} else if p := sem.procs[s]; p != nil {
			m.ID, m.Pid, m.Ended = teachingID(s), p.Pid(), p.Ended() && sem.status != "holding" && sem.status != "settling"
		}
		v.Members = append(v.Members, m)
	}
	if sem.round != nil {
		r := *sem.round
		r.Groups = slices.Clone(r.Groups)
		v.Round = &r
	}
	return v
}
