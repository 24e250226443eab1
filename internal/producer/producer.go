// Package producer publishes synthetic food orders to Kafka at a steady rate.
//
// Each order is keyed by its customer_id. Kafka hashes the key to choose the
// partition, so all orders of one customer land on one partition and are read
// back in the order they were placed, while different customers spread over
// all partitions and can be processed in parallel.
package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/kafka"
	"foodpipe/internal/order"
	"foodpipe/internal/telemetry"
)

// Config says what to produce.
type Config struct {
	Topic string
	// Rate is orders per second; 0 means as fast as the broker takes them.
	Rate float64
	// Count stops after this many orders; 0 means no limit.
	Count int
	// Duration stops after this long; 0 means no limit.
	Duration time.Duration
	// Linger, at a steady Rate, is how long an order may wait to go with
	// the orders due after it (PRODUCER_LINGER): the producer wakes once a
	// linger, not once an order, and hands over together every order due by
	// then, each created at the moment it was due, so its latency counts
	// the wait. Its client then needs no linger of its own (wire.Linger).
	Linger time.Duration
	// StatsInterval is how often a summary line is logged; 0 means never.
	StatsInterval time.Duration
	// Metrics receives the producer's counters; nil keeps them unexported.
	Metrics *telemetry.Metrics
}

// Stats are the producer's counters.
type Stats struct {
	Generated int64 // handed to the client
	Acked     int64 // acknowledged by all in-sync replicas
	Failed    int64 // given up on after the retry budget
}

// Options are the producer settings every foodpipe producer client needs.
//
// Idempotence (franz-go's default, kept on) makes the broker drop a batch it
// has already written when a retry re-sends it, so retries never duplicate;
// it needs acks=all, which also means an acknowledged order survives the loss
// of the leader.
func Options(retries int, deliveryTimeout, linger time.Duration) []kgo.Opt {
	return []kgo.Opt{
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// kgo counts tries, the first one included.
		kgo.RecordRetries(retries + 1),
		kgo.RecordDeliveryTimeout(deliveryTimeout),
		// Retries wait 0.5 s, 1 s, 2 s (with jitter): long enough to ride
		// out a broker restart, short enough to fail clearly when the
		// cluster is really gone.
		kgo.RetryBackoffFn(kafka.Backoff(500*time.Millisecond, 10*time.Second)),
		kgo.ProducerLinger(linger),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	}
}

// The linger LingerFor chooses: about lingerOrders orders a request, for at
// most lingerMost, and none from lingerNoneFrom orders/s up, where the
// bench's p99 target is 5 ms and orders batch themselves while a request is
// in flight.
const (
	lingerOrders   = 10
	lingerMost     = time.Second
	lingerNoneFrom = 1000
)

// LingerFor is the linger for a producer publishing rate orders a second
// steadily (PRODUCER_LINGER=auto): CPU against latency, chosen for CPU where
// orders are few. Without a linger every order is a request of its own, and
// each request costs every process on its way the same round trips and
// wake-ups whatever it carries (the producer's, the broker's, each group's
// fetch and transaction): at 10 orders/s that was nearly all their CPU, at
// 100/s most of it. Ten orders a request divides it by ten, and every order
// waits up to the linger: a second at 10 orders/s and below, 100 ms at 100/s,
// 10 ms just under 1,000/s; none from 1,000/s, or at 0 (as fast as the broker
// takes them, or on demand).
func LingerFor(rate float64) time.Duration {
	if rate <= 0 || rate >= lingerNoneFrom {
		return 0
	}
	return min(lingerMost, time.Duration(lingerOrders/rate*float64(time.Second)))
}

// Producer generates orders and publishes them.
type Producer struct {
	cl    *kgo.Client
	gen   *order.Generator
	cfg   Config
	log   *slog.Logger
	stats struct{ generated, acked, failed atomic.Int64 }
	// OnAck, when set, is called for every acknowledged order (the demo uses
	// it to know which ids to look for in the database).
	OnAck func(order.Order, *kgo.Record)
}

// New returns a producer that publishes through cl.
func New(cl *kgo.Client, gen *order.Generator, cfg Config, log *slog.Logger) *Producer {
	if cfg.Metrics == nil {
		cfg.Metrics = telemetry.NewMetrics(telemetry.Options{})
	}
	return &Producer{cl: cl, gen: gen, cfg: cfg, log: log}
}

// Stats returns the counters so far.
func (p *Producer) Stats() Stats {
	return Stats{Generated: p.stats.generated.Load(), Acked: p.stats.acked.Load(), Failed: p.stats.failed.Load()}
}

// Run produces until Count or Duration is reached, ctx is done, or a publish
// fails after its retries. It waits for every handed-off order to be
// acknowledged or failed before returning. Cancelling ctx is a normal stop.
func (p *Producer) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	start := time.Now()
	var deadline time.Time
	if p.cfg.Duration > 0 {
		deadline = start.Add(p.cfg.Duration)
	}
	stopStats := p.logStats(p.cfg.StatsInterval)
	defer stopStats()

	r := &run{p: p, ctx: ctx, cancel: cancel}
	// One promise for every record, made once: it reads what it needs from
	// the record, where a closure per record would be an allocation per
	// order, holding the whole order until its acknowledgement.
	promise := r.promise
	// The client's context, not ctx: an order already handed off is
	// delivered or failed even when the run is being stopped.
	sendCtx := context.WithoutCancel(ctx)
	var o order.Order
	records := &recordMaker{topic: p.cfg.Topic}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := 0; p.cfg.Count == 0 || i < p.cfg.Count; i++ {
		var at time.Time // when the order is placed; zero: now
		if p.cfg.Rate > 0 {
			// Orders follow a fixed schedule from the start time rather than
			// sleeping 1/rate after each one, so small delays do not add up
			// and the rate holds over any window.
			due := start.Add(time.Duration(float64(i) / p.cfg.Rate * float64(time.Second)))
			if !deadline.IsZero() && !due.Before(deadline) {
				break
			}
			if p.cfg.Linger > 0 {
				at = due
			}
			// An order not yet due is waited for, and a linger more: the
			// orders due meanwhile are made at once after it, without a
			// wait of their own.
			if wait := time.Until(due); wait > 0 {
				timer.Reset(wait + p.cfg.Linger)
				select {
				case <-timer.C:
				case <-ctx.Done():
				}
			}
		} else if !deadline.IsZero() && !time.Now().Before(deadline) {
			break
		}
		if ctx.Err() != nil {
			break
		}
		if p.OnAck != nil {
			// OnAck is handed the order after the acknowledgement, and
			// may keep it, so each order needs items of its own; without
			// OnAck, the order is in its record at once and one Order
			// serves every order.
			o = order.Order{}
		}
		rec := records.next(p.gen, &o, at)
		p.stats.generated.Add(1)
		if p.OnAck == nil {
			p.cl.Produce(sendCtx, rec, promise)
			continue
		}
		acked := o
		p.cl.Produce(sendCtx, rec, func(rec *kgo.Record, err error) {
			if r.finish(rec, err) {
				p.OnAck(acked, rec)
			}
		})
	}
	// The flush is bounded. An order whose request went out just before the
	// broker went away cannot be failed by the client (idempotence: it
	// cannot know whether the broker wrote it) and waits for an answer that
	// may never come; unbounded, the flush would hold a producer told to
	// stop for as long as the broker is away. What is not acknowledged by
	// then is in doubt, and said to be.
	wait := flushWait
	if ctx.Err() != nil {
		wait = stopFlushWait
	}
	fctx, cancelFlush := context.WithTimeout(sendCtx, wait)
	defer cancelFlush()
	if err := p.cl.Flush(fctx); err != nil {
		s := p.Stats()
		inDoubt := s.Generated - s.Acked - s.Failed
		p.log.Error("orders handed to Kafka were not acknowledged in time: they may or may not be in the topic",
			slog.Int64("in_doubt", inDoubt), slog.Duration("waited", wait))
		r.fail(fmt.Errorf("flush: %d orders not acknowledged within %v, in doubt: %w", inDoubt, wait, err))
	}
	s := p.Stats()
	p.log.Info("producer finished", slog.Int64("produced", s.Acked), slog.Int64("failed", s.Failed),
		slog.Duration("elapsed", time.Since(start)))
	if r.err != nil {
		return r.err
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// headedRecord is a record with room for its one header.
type headedRecord struct {
	kgo.Record
	header [1]kgo.RecordHeader
}

// recordMaker makes the records of a run. It carves them and their bytes
// out of blocks of many, so that a record costs no allocation of its own:
// at hundreds of thousands of orders a second, two allocations per order
// were a fifth of the producer's time. A block stays in memory until the
// client is done with every record in it; records are acknowledged in about
// the order they were made, so that is soon after its last.
type recordMaker struct {
	topic string
	bytes []byte         // what is left of the current block of bytes
	heads []headedRecord // what is left of the current block of records
}

// The blocks stay within Go's small-object size classes; a new block of
// bytes is started when less than bytesRoom is left, more than an order
// from the generator takes. A larger order still fits: append moves it to
// an allocation of its own.
const (
	bytesBlock = 16 << 10
	bytesRoom  = 1 << 10
	headsBlock = 64
)

// next makes gen's next order in *o (reusing its items, see
// order.Generator.NextInto), placed at at (zero: now), and returns its
// record: its JSON as the value, keyed by the customer so that a customer's
// orders share a partition, the order id in a header. Value, key and header
// value lie one after the other.
func (m *recordMaker) next(gen *order.Generator, o *order.Order, at time.Time) *kgo.Record {
	if cap(m.bytes)-len(m.bytes) < bytesRoom {
		m.bytes = make([]byte, 0, bytesBlock)
	}
	free := m.bytes[len(m.bytes):]
	var b []byte
	if at.IsZero() {
		b = gen.AppendNext(free, o)
	} else {
		b = gen.AppendNextAt(free, o, at)
	}
	v := len(b)
	b = append(b, o.CustomerID...)
	k := len(b)
	b = append(b, o.OrderID...)
	if cap(b) == cap(free) {
		// Still in the block: append did not have to move it.
		m.bytes = m.bytes[:len(m.bytes)+len(b)]
	}
	if len(m.heads) == 0 {
		m.heads = make([]headedRecord, headsBlock)
	}
	h := &m.heads[0]
	m.heads = m.heads[1:]
	h.header[0] = kgo.RecordHeader{Key: order.HeaderOrderID, Value: b[k:len(b):len(b)]}
	h.Topic, h.Key, h.Value, h.Headers = m.topic, b[v:k:k], b[:v:v], h.header[:]
	return &h.Record
}

// orderIDOf returns the order id in rec's header.
func orderIDOf(rec *kgo.Record) string {
	for _, h := range rec.Headers {
		if h.Key == order.HeaderOrderID {
			return string(h.Value)
		}
	}
	return ""
}

// How long Run waits for the orders it handed to the client to be
// acknowledged: after a run that ended by itself, longer than the delivery
// timeout the clients are given (wire: 30 s), after which the client fails
// what it safely can; when told to stop, within the 10 s docker stop waits
// before it kills.
const (
	flushWait     = 45 * time.Second
	stopFlushWait = 5 * time.Second
)

// run is one Run's state that its records' promises share.
type run struct {
	p      *Producer
	ctx    context.Context
	cancel context.CancelCauseFunc
	once   sync.Once
	err    error // the first failure; read after the client's Flush
}

// fail stops the run with err, the first failure only.
func (r *run) fail(err error) {
	r.once.Do(func() { r.err = err; r.cancel(err) })
}

// promise is the client's callback for the records of a run without OnAck.
func (r *run) promise(rec *kgo.Record, err error) { r.finish(rec, err) }

// finish counts, logs and, on a failure, stops the run; it reports whether
// rec was acknowledged.
func (r *run) finish(rec *kgo.Record, err error) bool {
	p := r.p
	if err != nil {
		id := orderIDOf(rec)
		p.stats.failed.Add(1)
		p.log.Error("publish failed", telemetry.OrderID(id), slog.Any("err", err))
		r.fail(fmt.Errorf("publish order %s: %w", id, err))
		return false
	}
	p.stats.acked.Add(1)
	p.cfg.Metrics.OrdersProduced.Inc()
	if p.log.Enabled(r.ctx, slog.LevelDebug) {
		p.log.Debug("order produced", telemetry.OrderID(orderIDOf(rec)),
			slog.String("customer_id", string(rec.Key)),
			slog.Int("partition", int(rec.Partition)), slog.Int64("offset", rec.Offset),
			slog.Time("timestamp", rec.Timestamp))
	}
	return true
}

// logStats logs a summary line every interval until the returned func is called.
func (p *Producer) logStats(every time.Duration) func() {
	var last int64
	return telemetry.Every(every, func() {
		s := p.Stats()
		p.log.Info("producer stats", slog.Int64("produced", s.Acked), slog.Int64("failed", s.Failed),
			slog.Float64("rate_per_s", float64(s.Acked-last)/every.Seconds()))
		last = s.Acked
	})
}
