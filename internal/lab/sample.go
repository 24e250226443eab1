package lab

// The sampling loop: once a tick, read the group, the tables, the children
// and the dead letters, outside the lock; then fold it into the state under
// the lock and send the snapshot to every open stream.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"foodpipe/internal/harness"
	"foodpipe/internal/inspect"
	"foodpipe/internal/kafka"
	"foodpipe/internal/order"
	"foodpipe/internal/store"
)

// sample is one reading of the pipeline.
type sample struct {
	at                  time.Time
	ackedBefore, acked  int64
	view                inspect.Group
	viewErr, dbErr      error
	tally               store.Tally
	lat                 store.Latency
	repeats             []string
	repeatsRead         bool
	stored              []order.Order
	children            map[string]childSample
	letters             []Letter
	deadTotal           int
	latWindow           time.Duration
	checkedIDs          []string
	repeatErr, storeErr error
	analytics           analyticsSample
	txn                 txnSample
	notify              notifySample
}

type childSample struct {
	answering, breakerOpen, ready bool
	fenced                        int64
	owned                         claims // what it says it owns (see owners.go)
}

func (l *Lab) sampleLoop() {
	t := time.NewTicker(l.tick)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		l.sampleOnce(n%5 == 0)
	}
}

// sampleOnce reads the pipeline and publishes a snapshot. withRepeats also
// looks for orders stored twice, a query over the whole table.
func (l *Lab) sampleOnce(withRepeats bool) {
	ctx, cancel := context.WithTimeout(l.ctx, max(3*l.tick, 3*time.Second))
	defer cancel()
	s := sample{at: time.Now(), latWindow: 10 * time.Second, children: map[string]childSample{}}
	l.mu.Lock()
	s.ackedBefore = l.st.acked
	running := map[string]*harness.Process{}
	for id, m := range l.st.members {
		if m.Status == "running" || m.Status == "stopping" {
			running[id] = l.process(id)
		}
	}
	s.checkedIDs = slices.Collect(maps.Keys(l.st.sent))
	analyticsProc := l.st.analytics.proc
	l.mu.Unlock()
	if len(s.checkedIDs) > 500 {
		s.checkedIDs = s.checkedIDs[:500]
	}

	var wg sync.WaitGroup
	var cmu sync.Mutex
	for id, p := range running {
		if p == nil {
			continue
		}
		wg.Go(func() {
			c := childSample{}
			if fams, err := p.Metrics(ctx); err == nil {
				v, ok := harness.Gauge(fams, "foodpipe_db_breaker_open")
				c.answering, c.breakerOpen = true, ok && v == 1
				f, _ := harness.Gauge(fams, "foodpipe_fenced_batches_total")
				c.fenced = int64(f)
				c.owned = ownedOf(fams)
				c.ready, _ = p.Ready(ctx) // not answering reads as not ready
			}
			cmu.Lock()
			s.children[id] = c
			cmu.Unlock()
		})
	}
	// The tables before the topic, as inspect.Read counts the rows: a row
	// read is of a message below the high watermark read after it, which
	// only grows, so a lane never shows more rows than its partition holds
	// (read the other way round, orders stored between the two reads did,
	// at 200 a second).
	st := l.pl.Store
	src := inspect.Source{Admin: l.adm, Rows: true}
	if s.tally, s.dbErr = st.Tally(ctx, l.cfg.Group); s.dbErr == nil {
		src.Store = st
	}
	s.view, s.viewErr = inspect.Read(ctx, src, l.cfg.Topic, l.cfg.Group)
	if s.dbErr == nil {
		s.dbErr = s.view.DBErr
	}
	s.analytics = l.sampleAnalytics(ctx, analyticsProc)
	s.txn = l.sampleTxn(ctx)
	s.notify = l.sampleNotify(ctx)
	if s.dbErr == nil {
		s.lat, s.dbErr = st.StoredLatency(ctx, s.at.Add(-s.latWindow))
	}
	if len(s.checkedIDs) > 0 {
		s.stored, s.storeErr = st.Orders(ctx, s.checkedIDs)
	}
	if withRepeats {
		s.repeats, s.repeatErr = st.Repeats(ctx, l.started, 10)
		s.repeatsRead = s.repeatErr == nil
	}
	s.letters, s.deadTotal = l.dlq.letters()
	wg.Wait()

	l.mu.Lock()
	s.acked = l.st.acked
	l.fold(&s)
	b, err := json.Marshal(l.st.snap)
	if err != nil {
		l.log.Error("lab snapshot", "err", err) // a bug: the snapshot is plain data
	} else {
		l.publish(b)
	}
	l.mu.Unlock()
}

// process is the child of a member, nil when it is gone. Call with l.mu held.
func (l *Lab) process(id string) *harness.Process {
	if m := l.st.members[id]; m != nil {
		return m.proc
	}
	return nil
}

// fold takes a sample into the state and builds the snapshot. Call with
// l.mu held.
func (l *Lab) fold(s *sample) {
	st := &l.st
	l.foldMembers(s)
	l.foldOwners(s)
	l.foldHistory(s)
	l.foldDead(s)
	l.foldAnalytics(s.at, s.analytics)
	st.snap.Analytics = st.analytics.view
	st.snap.Semantics = l.semanticsView()
	st.snap.Notify = l.foldNotify(s.notify)
	st.snap.Invariants = l.checkInvariants(s)
	if s.viewErr == nil && s.view.Protocol == kafka.ProtocolConsumer && slices.ContainsFunc(s.view.Members, func(m kafka.MemberView) bool { return m.Epoch > 0 }) {
		st.facts.kip848Seen++
	}
	st.snap.Lessons = lessons(&st.facts)

	snap := &st.snap
	snap.At, snap.Topic, snap.Group = s.at, st.topic, st.group
	snap.Producer = ProducerView{Rate: st.rate, Paused: st.paused, Acked: st.acked}
	if s.viewErr == nil {
		snap.GroupState = s.view.State
		snap.GroupProtocol, snap.GroupEpoch = s.view.Protocol, s.view.Epoch
		snap.Lanes = snap.Lanes[:0]
		for _, p := range s.view.Partitions {
			snap.Lanes = append(snap.Lanes, Lane{Partition: p.Partition, HighWatermark: p.HighWatermark, LastStable: p.LastStable,
				Committed: p.Committed, Lag: p.CommittedLag, Rows: max(p.Rows, 0),
				Recent: append([]Msg{}, st.recent[p.Partition]...)}) // [] not null for a lane with no message yet
		}
	}
	// The owners move on without Kafka's answer (the members say it), and
	// a countdown goes on while the broker is away.
	for i := range snap.Lanes {
		ln := &snap.Lanes[i]
		ln.Owner, ln.OwnerState, ln.SessionLeft = l.laneOwner(ln.Partition, s.at)
	}
	l.foldTxn(s.at, s.txn, snap.Lanes)
	snap.Txn = st.txn.view
	snap.Rebalances = st.facts.rebalances
	snap.SessionTimeout = st.session.Seconds()
	snap.Members = snap.Members[:0]
	for _, id := range st.order {
		m := *st.members[id]
		m.Owns = []int32{} // [] not null: the page iterates it
		if m.Status != "exited" {
			m.Owns = st.owned(id)
		}
		m.KIP848 = epochOf(s, id)
		snap.Members = append(snap.Members, m)
	}
	snap.Timeline = append([]Event{}, st.timeline...)
	snap.History = st.history
	snap.Faults = Faults{DBCut: time.Now().Before(st.cutUntil), CanCut: l.proxy != nil,
		BrokerRestarting: st.brokerRestarting, CanRestartBroker: st.childBroker}
	if snap.Faults.DBCut {
		snap.Faults.DBCutLeft = time.Until(st.cutUntil).Seconds()
	}
	snap.Reasons = snap.Reasons[:0]
	for _, r := range Reasons() {
		snap.Reasons = append(snap.Reasons, string(r))
	}
	snap.Notice, snap.Error = l.banner(s)
}

// epochOf is member id as a KIP-848 group's broker describes it, nil when
// the group is classic, unread, or lists no such member.
func epochOf(s *sample, id string) *MemberEpoch {
	if s.viewErr != nil || s.view.Protocol != kafka.ProtocolConsumer {
		return nil
	}
	for _, m := range s.view.Members {
		if m.InstanceID == id {
			return &MemberEpoch{Epoch: m.Epoch, Target: append([]int32{}, m.Target...)} // [] not null: the page joins it
		}
	}
	return nil
}

// banner says what the page's banner shows: a plain notice while a fault
// the user asked for explains what the lab cannot read, else a short error.
// The clients' own words go to the lab's log, not to the page.
func (l *Lab) banner(s *sample) (notice, errText string) {
	st := &l.st
	var notices, errs []string
	brokerAway := st.brokerRestarting || !st.brokerBack.IsZero() && s.at.Sub(st.brokerBack) < brokerSettle
	switch {
	case st.brokerRestarting:
		notices = append(notices, "broker restarting as you asked; producer retrying, consumers waiting")
	case brokerAway && s.viewErr != nil:
		notices = append(notices, "broker back; clients reconnecting")
	}
	if s.viewErr != nil {
		l.log.Warn("lab: read the topic and the group", slog.Any("err", s.viewErr))
		if !brokerAway {
			errs = append(errs, "Kafka does not answer the lab: lanes and lag are from the last answer (details in the lab's log)")
		}
	}
	if s.dbErr != nil {
		l.log.Warn("lab: read the tables", slog.Any("err", s.dbErr))
		errs = append(errs, "PostgreSQL does not answer the lab: rows and invariants are from the last answer (details in the lab's log)")
	}
	if time.Now().Before(st.cutUntil) {
		notices = append(notices, "database cut off from the consumers as you asked; their breakers open, orders wait in Kafka")
	}
	return strings.Join(notices, " · "), strings.Join(errs, " · ")
}

// brokerSettle is how long after a broker restart a failed read of the
// group is put down to the restart: the clients reconnect with backoff.
const brokerSettle = 15 * time.Second

// foldMembers takes what each child said about itself.
func (l *Lab) foldMembers(s *sample) {
	st := &l.st
	for _, m := range st.members {
		if m.Status == "paused" {
			// Not asked: a stopped process cannot answer, and asking would
			// hold the sample up for the request's time limit.
			m.Answering, m.Ready = false, false
		}
	}
	for id, c := range s.children {
		m := st.members[id]
		if m == nil || m.Status == "exited" {
			continue
		}
		if c.answering && c.breakerOpen != m.BreakerOpen {
			if c.breakerOpen {
				st.facts.breakerOpened++
				st.event(s.at, "fault", id+": database circuit breaker open; /readyz says 503")
			} else {
				st.facts.breakerClosed++
				st.event(s.at, "fault", id+": database circuit breaker closed again")
			}
			m.BreakerOpen = c.breakerOpen
		}
		m.Answering, m.Ready = c.answering, c.ready
		if c.answering && c.fenced > m.Fenced {
			// A zombie woke up and wrote late: the store refused it.
			st.event(s.at, "fault", fmt.Sprintf("%s: %d late batch(es) refused by the offset fence", id, c.fenced-m.Fenced))
			st.facts.fenced += int(c.fenced - m.Fenced)
			m.Fenced = c.fenced
		}
	}
}

// foldHistory adds a point to the charts.
func (l *Lab) foldHistory(s *sample) {
	st := &l.st
	h := &st.history
	dt := s.at.Sub(st.prev.at).Seconds()
	if st.prev.at.IsZero() || dt <= 0 {
		dt = 1
	}
	stored := s.tally.Orders
	if s.dbErr != nil {
		stored = st.prev.tally.Orders
		s.tally = st.prev.tally
	}
	h.T = appendCapped(h.T, float64(s.at.UnixMilli())/1000)
	h.Produced = appendCapped(h.Produced, float64(s.acked-st.prev.acked)/dt)
	rate := float64(stored-st.prev.tally.Orders) / dt
	if st.prev.at.IsZero() {
		rate = 0
	}
	h.Stored = appendCapped(h.Stored, rate)
	var p50, p99 *float64
	if s.dbErr == nil && s.lat.N > 0 {
		a, b := float64(s.lat.P50.Microseconds())/1000, float64(s.lat.P99.Microseconds())/1000
		p50, p99 = &a, &b
	}
	h.P50, h.P99 = appendCapped(h.P50, p50), appendCapped(h.P99, p99)
	if s.viewErr == nil {
		for len(h.Lag) < len(s.view.Partitions) {
			h.Lag = append(h.Lag, make([]int64, len(h.T)-1))
		}
		for i, p := range s.view.Partitions {
			h.Lag[i] = appendCapped(h.Lag[i], p.CommittedLag)
		}
	} else {
		for i := range h.Lag {
			h.Lag[i] = appendCapped(h.Lag[i], h.Lag[i][len(h.Lag[i])-1])
		}
	}
	st.facts.lastStored = stored - st.base.tally.Orders
	st.prev = *s
}

// foldDead takes the dead-letter topic as read.
func (l *Lab) foldDead(s *sample) {
	st := &l.st
	if s.deadTotal > st.snap.DeadTotal {
		st.event(s.at, "dlq", fmt.Sprintf("%d new dead letter(s) on %s", s.deadTotal-st.snap.DeadTotal, l.cfg.DLQTopic))
		st.facts.deadSeen += s.deadTotal - st.snap.DeadTotal
	}
	st.snap.Dead, st.snap.DeadTotal = s.letters, s.deadTotal
}

// publish sends b to every open stream; a stream that is behind misses
// this one and gets the next (each snapshot is whole).
func (l *Lab) publish(b []byte) {
	l.last = b
	for ch := range l.subs {
		select {
		case ch <- b:
		default:
		}
	}
}
