package lab

// What the user can do to the pipeline. Each action is told in the
// timeline and counted for the lessons; what it causes (a rebalance, an
// open breaker) is seen by the sampling, as it would be in production.

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/order"
	"foodpipe/internal/producer"
)

// MaxRate bounds the producer's rate set from the page: the lab runs on a
// laptop, beside a browser.
const MaxRate = 2000

// AddConsumer starts one more consumer child, named consumer-N.
func (l *Lab) AddConsumer() (string, error) { return l.addConsumer(true) }

// addConsumer starts a consumer; byUser counts it for the lessons (the
// consumers the lab starts with are not the user's doing).
func (l *Lab) addConsumer(byUser bool) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	running := 0
	for _, m := range l.st.members {
		if m.Status != "exited" {
			running++
		}
	}
	if running >= MaxConsumers {
		return "", fmt.Errorf("add consumer: %w (at most %d)", ErrTooMany, MaxConsumers)
	}
	l.st.nextID++
	id := fmt.Sprintf("consumer-%d", l.st.nextID)
	p, err := l.pl.SpawnConsumer(id, func(c *config.Config) {
		c.LogLevel = slog.LevelWarn
		l.consumerEdit(c)
	})
	if err != nil {
		return "", fmt.Errorf("add consumer: %w", err)
	}
	l.st.members[id] = &Member{ID: id, Pid: p.Pid(), Status: "running", proc: p}
	l.st.order = append(l.st.order, id)
	if byUser {
		l.st.facts.added++
	}
	l.st.event(time.Now(), "process", fmt.Sprintf("%s started (pid %d)", id, p.Pid()))
	return id, nil
}

// consumerEdit is a consumer's configuration in the lab: the database
// through the cut proxy, and the lab's session timeout, set here by name as
// well: the page counts a dead member's down from it. Call with l.mu held.
func (l *Lab) consumerEdit(c *config.Config) {
	c.DatabaseURL, c.SessionTimeout = l.childDB, l.st.session
}

// Signal acts on a consumer: "stop" (SIGTERM: it leaves the group
// cleanly), "kill" (SIGKILL: it vanishes, and the group waits out its
// session), "pause" (SIGSTOP: a zombie that still thinks it owns its
// partitions) or "resume" (SIGCONT).
func (l *Lab) Signal(id, what string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.st.members[id]
	if m == nil || m.Status == "exited" {
		return fmt.Errorf("%s %s: %w", what, id, ErrNoSuchConsumer)
	}
	p := m.proc
	var err error
	now := time.Now()
	owned := l.st.owned(id)
	then := ""
	switch what {
	case "stop":
		m.Status, m.stopped = "stopping", true
		l.st.facts.stopped++
		go func() { _ = p.Stop(10 * time.Second) }() // how it ended comes as a ProcessExited event
		if len(owned) > 0 {
			then = fmt.Sprintf(": it finishes its batch, commits and leaves the group; %v go to the others at once", owned)
		}
	case "kill":
		m.killed, m.killedAt = true, now
		err = p.Signal(syscall.SIGKILL)
		if len(owned) > 0 {
			then = fmt.Sprintf(": it says nothing to the group; %v wait for its session to time out (%v)", owned, l.st.session)
		}
	case "pause":
		if err = p.Signal(syscall.SIGSTOP); err == nil {
			m.Status, m.wasPaused, m.pausedAt = "paused", true, now
			l.st.facts.paused++
			if len(owned) > 0 {
				then = fmt.Sprintf(": it sends no heartbeat and still thinks it owns %v; its session times out in %v", owned, l.st.session)
			}
		}
	case "resume":
		if err = p.Signal(syscall.SIGCONT); err == nil {
			m.Status = "running"
			l.st.facts.resumed++
		}
	default:
		return fmt.Errorf("%w: %q", ErrUnknownAction, what)
	}
	if err != nil {
		return err
	}
	l.st.event(now, "process", fmt.Sprintf("%s: %s (%s)%s", id, what, signalName[what], then))
	return nil
}

var signalName = map[string]string{"stop": "SIGTERM", "kill": "SIGKILL", "pause": "SIGSTOP", "resume": "SIGCONT"}

// SetRate sets the producer's rate in orders per second, or pauses it.
// The producer holds one rate from its start, so a change ends the run
// and starts another.
func (l *Lab) SetRate(rate float64, paused bool) error { return l.setRate(rate, paused, true) }

// setRate sets the rate; byUser counts the change for the lessons.
func (l *Lab) setRate(rate float64, paused, byUser bool) error {
	if rate < 0 || rate > MaxRate {
		return fmt.Errorf("%w: the rate must be from 0 to %d orders per second", ErrBadRequest, MaxRate)
	}
	l.stopProducer()
	l.mu.Lock()
	if l.st.rate != rate || l.st.paused != paused {
		if byUser {
			l.st.facts.rateChanged++
		}
		if byUser && paused && !l.st.paused {
			l.st.facts.producerPaused++
		}
		what := fmt.Sprintf("producer at %g orders/s", rate)
		if paused || rate == 0 {
			what = "producer paused"
		}
		l.st.event(time.Now(), "producer", what)
	}
	l.st.rate, l.st.paused = rate, paused
	l.mu.Unlock()
	if paused || rate == 0 {
		return nil
	}
	l.prodMu.Lock()
	defer l.prodMu.Unlock()
	ctx, stop := context.WithCancel(l.ctx)
	done := make(chan struct{})
	l.prodStop, l.prodDone = stop, done
	p := producer.New(l.pcl, l.gen, producer.Config{Topic: l.cfg.Topic, Rate: rate}, l.log)
	p.OnAck = func(o order.Order, r *kgo.Record) {
		l.mu.Lock()
		l.st.sentMsg(r.Partition, Msg{Offset: r.Offset, Key: o.CustomerID, Kind: "order"})
		l.st.sentOrder(o)
		l.st.sem.ackedOrder(r.Partition, r.Offset, o.OrderID)
		l.mu.Unlock()
	}
	go func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			l.mu.Lock()
			l.st.paused = true
			l.st.event(time.Now(), "producer", "producer stopped: "+err.Error())
			l.mu.Unlock()
		}
	}()
	return nil
}

// stopProducer ends the producer's run, if one is going, and waits for
// its last orders to be acknowledged.
func (l *Lab) stopProducer() {
	l.prodMu.Lock()
	defer l.prodMu.Unlock()
	if l.prodStop != nil {
		l.prodStop()
		<-l.prodDone
		l.prodStop = nil
	}
}

// SendInvalid sends one message refused for reason.
func (l *Lab) SendInvalid(ctx context.Context, reason order.Reason) error {
	l.mu.Lock()
	o := l.craft.Next()
	l.mu.Unlock()
	b, err := Invalid(o, reason)
	if err != nil {
		return err
	}
	rec := &kgo.Record{Topic: l.cfg.Topic, Key: []byte(o.CustomerID), Value: b,
		Headers: []kgo.RecordHeader{{Key: order.HeaderOrderID, Value: []byte(o.OrderID)}}}
	if err := l.send(ctx, rec, "invalid"); err != nil {
		return err
	}
	l.mu.Lock()
	l.st.facts.invalid++
	l.st.event(time.Now(), "producer", fmt.Sprintf("sent an invalid order (%s) for %s", reason, o.CustomerID))
	l.mu.Unlock()
	return nil
}

// SendDuplicate sends again the last order the producer sent: the same
// bytes (an exact duplicate, which the consumer drops), or the same id with
// other content (a conflict, which it sets aside as a dead letter).
func (l *Lab) SendDuplicate(ctx context.Context, conflicting bool) error {
	l.mu.Lock()
	if len(l.st.recentSent) == 0 {
		l.mu.Unlock()
		return fmt.Errorf("duplicate: %w", ErrNothingSent)
	}
	o := l.st.recentSent[len(l.st.recentSent)-1]
	l.mu.Unlock()
	kind := "duplicate"
	if conflicting {
		o, kind = Conflicting(o), "conflict"
	}
	rec := &kgo.Record{Topic: l.cfg.Topic, Key: []byte(o.CustomerID), Value: o.AppendJSON(nil),
		Headers: []kgo.RecordHeader{{Key: order.HeaderOrderID, Value: []byte(o.OrderID)}}}
	if err := l.send(ctx, rec, kind); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st.sem.resend(o.OrderID)
	if conflicting {
		l.st.facts.conflicts++
		l.st.event(time.Now(), "producer", "sent order "+o.OrderID+" again with other content (a conflicting duplicate)")
	} else {
		l.st.dupsSent++
		l.st.facts.duplicates++
		l.st.event(time.Now(), "producer", "sent order "+o.OrderID+" again, byte for byte (an exact duplicate)")
	}
	return nil
}

// send publishes one message the user asked for and counts it as produced.
func (l *Lab) send(ctx context.Context, rec *kgo.Record, kind string) error {
	r, err := l.pcl.ProduceSync(ctx, rec).First()
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	l.mu.Lock()
	l.st.sentMsg(r.Partition, Msg{Offset: r.Offset, Key: string(r.Key), Kind: kind})
	l.mu.Unlock()
	return nil
}

// CutDatabase cuts the consumers off PostgreSQL for d, then mends the line.
func (l *Lab) CutDatabase(d time.Duration) error {
	if l.proxy == nil {
		return fmt.Errorf("cut the database: %w", ErrCannotCut)
	}
	if d < time.Second || d > 5*time.Minute {
		return fmt.Errorf("%w: a cut lasts from 1 s to 5 min", ErrBadRequest)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Now().Before(l.st.cutUntil) {
		return fmt.Errorf("cut the database: %w", ErrBusy)
	}
	l.proxy.Cut()
	l.st.cutUntil = time.Now().Add(d)
	l.st.facts.dbCuts++
	l.st.event(time.Now(), "fault", fmt.Sprintf("database cut off from the consumers for %v", d))
	time.AfterFunc(d, func() {
		l.proxy.Mend()
		l.mu.Lock()
		l.st.event(time.Now(), "fault", "database line mended")
		l.mu.Unlock()
	})
	return nil
}

// RestartBroker stops the child broker, keeps it down for down, and starts
// it again with its data.
func (l *Lab) RestartBroker(down time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.st.childBroker {
		return fmt.Errorf("restart the broker: %w", ErrExternalBroker)
	}
	if l.st.brokerRestarting {
		return fmt.Errorf("restart the broker: %w", ErrBusy)
	}
	l.st.brokerRestarting = true
	l.st.event(time.Now(), "broker", fmt.Sprintf("broker stopping, down for %v", down))
	go func() {
		if err := l.pl.RestartBroker(l.ctx, down); err != nil {
			l.mu.Lock()
			l.st.brokerRestarting = false
			l.st.event(time.Now(), "broker", "broker restart failed: "+err.Error())
			l.mu.Unlock()
		}
	}()
	return nil
}

// Replay re-publishes the dead letter at offset of the dead-letter topic,
// once.
func (l *Lab) Replay(ctx context.Context, offset int64) error {
	err := l.dlq.replay(ctx, offset, l.cfg.Topic, func(r *kgo.Record) error { return l.send(ctx, r, "replay") })
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.st.facts.replays++
	l.st.event(time.Now(), "dlq", fmt.Sprintf("dead letter at offset %d replayed to %s", offset, l.cfg.Topic))
	l.mu.Unlock()
	return nil
}
