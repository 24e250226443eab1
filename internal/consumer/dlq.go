package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/dlq"
	"foodpipe/internal/order"
	"foodpipe/internal/store"
)

// deadLetterOf describes record r, set aside for reason, as a dead letter
// to record with its batch.
func deadLetterOf(scope string, r *kgo.Record, reason string, err error) store.DeadLetter {
	d := store.DeadLetter{Scope: scope, Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Reason: reason, Error: err.Error(), Key: r.Key, Value: r.Value, FailedAt: time.Now()}
	for _, h := range r.Headers {
		d.Headers = append(d.Headers, store.Header{Key: h.Key, Value: h.Value})
	}
	return d
}

// deadRecorded counts (in foodpipe_orders_invalid_total) and logs the dead
// letters a stored batch recorded, and wakes the publisher.
func (c *Consumer) deadRecorded(b *store.Batch, res store.Result) {
	note := func(d store.DeadLetter, orderID string) {
		c.cfg.Metrics.OrdersInvalid.WithLabelValues(d.Reason).Inc()
		c.log.Warn("message set aside for the dead-letter topic", slog.String("order_id", orderID),
			slog.String("reason", d.Reason), slog.String("error", d.Error),
			slog.Int("partition", int(d.Partition)), slog.Int64("offset", d.Offset))
	}
	if !res.DeadSkipped {
		for _, d := range b.Dead {
			note(d, headerOf(d.Headers, order.HeaderOrderID))
		}
	}
	for _, r := range res.Conflicts {
		note(store.DeadLetter{Reason: dlq.ReasonConflict, Error: store.ErrConflict.Error(), Partition: r.Partition, Offset: r.Offset}, r.Order.OrderID)
	}
	for _, r := range res.Rejected {
		reason := dlq.ReasonRejected
		if errors.Is(r.Err, store.ErrRefused) {
			reason = dlq.ReasonRefused
		}
		note(store.DeadLetter{Reason: reason, Error: r.Err.Error(), Partition: r.Row.Partition, Offset: r.Row.Offset}, r.Row.Order.OrderID)
	}
	select {
	case c.deadKick <- struct{}{}:
	default:
	}
}

// relayEvery is how often the publisher looks for dead letters left
// unpublished (by a crash, or a dead-letter topic that refused them).
const relayEvery = 5 * time.Second

// relayDead publishes the group's recorded dead letters to the dead-letter
// topic: at start (what a crashed member left), whenever a batch recorded
// some, and every relayEvery. When ctx ends it publishes what is left,
// within the shutdown budget, and returns.
func (c *Consumer) relayDead(ctx context.Context) {
	tick := time.NewTicker(relayEvery)
	defer tick.Stop()
	for {
		// A publish under way is finished even when ctx ends, within the
		// shutdown budget: cut between Kafka taking the letters and the
		// database marking them published, it would leave them to be
		// published a second time.
		wctx, cancel := c.workContext(ctx)
		c.publishPending(wctx)
		cancel()
		select {
		case <-c.deadKick:
		case <-tick.C:
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ShutdownTimeout)
			c.publishPending(fctx)
			cancel()
			return
		}
	}
}

// publishBatch is how many dead letters one publishing transaction takes.
const publishBatch = 500

// publishPending publishes recorded dead letters until none is left or an
// attempt fails; what fails is tried again on the next round.
func (c *Consumer) publishPending(ctx context.Context) {
	for ctx.Err() == nil {
		failed := 0
		n, err := c.store.PublishDeadLetters(ctx, c.cfg.Group, publishBatch, func(ctx context.Context, dead []store.DeadLetter) []error {
			errs := c.publishDead(ctx, dead)
			for _, err := range errs {
				if err != nil {
					failed++
				}
			}
			return errs
		})
		c.cfg.Metrics.DLQPending.Set(float64(failed))
		if err != nil && ctx.Err() == nil {
			c.log.Warn("dead-letter publish: database", slog.Any("err", err))
		}
		if err != nil || failed > 0 || n < publishBatch {
			return
		}
	}
}

// publishTimeout bounds one publish of dead letters.
const publishTimeout = 15 * time.Second

// publishDead sends dead letters to the dead-letter topic and returns, per
// letter, nil once Kafka has it. A letter too large for the topic goes
// again cut down; an error no retry can fix is returned wrapping
// store.ErrUnpublishable, so that the letter is kept in the database with
// it and not tried again.
func (c *Consumer) publishDead(ctx context.Context, dead []store.DeadLetter) []error {
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	recs := make([]*kgo.Record, len(dead))
	for i, d := range dead {
		recs[i] = dlq.Record(c.cfg.DLQTopic, c.cfg.Group, d, false)
	}
	errs := c.produceAll(pctx, recs)
	if slices.ContainsFunc(errs, func(err error) bool { return errors.Is(err, kerr.UnknownTopicID) }) {
		// The dead-letter topic was deleted and created again: the client
		// keeps failing the id it first saw until it forgets the topic, and
		// looks it up anew at the next publish, a round from now.
		c.log.Warn("the dead-letter topic was deleted and created again: publishing to the new one", slog.String("topic", c.cfg.DLQTopic))
		c.pub.PurgeTopicsFromClient(c.cfg.DLQTopic)
	}
	for i, err := range errs {
		if err != nil && tooLarge(err) {
			c.log.Warn("dead letter too large for the dead-letter topic; sending a cut-down copy, the whole one stays in the database",
				slog.Int64("dead_letter_id", dead[i].ID), slog.Int("value_bytes", len(dead[i].Value)), slog.Any("err", err))
			errs[i] = c.produceAll(pctx, []*kgo.Record{dlq.Record(c.cfg.DLQTopic, c.cfg.Group, dead[i], true)})[0]
		}
		if errs[i] != nil && permanent(errs[i]) {
			errs[i] = fmt.Errorf("%w: %w", store.ErrUnpublishable, errs[i])
		}
	}
	published := 0
	for i, err := range errs {
		if err == nil {
			published++
			continue
		}
		c.log.Warn("dead-letter publish failed; it stays in the database",
			slog.Int64("dead_letter_id", dead[i].ID), slog.Bool("tried_again", !errors.Is(err, store.ErrUnpublishable)),
			slog.Int("partition", int(dead[i].Partition)), slog.Int64("offset", dead[i].Offset), slog.Any("err", err))
	}
	c.cfg.Metrics.DLQ.Add(float64(published))
	return errs
}

// produceAll produces records and waits for every one; it returns their
// errors in order.
func (c *Consumer) produceAll(ctx context.Context, recs []*kgo.Record) []error {
	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	for i, r := range recs {
		wg.Add(1)
		c.pub.Produce(ctx, r, func(_ *kgo.Record, err error) {
			errs[i] = err
			wg.Done()
		})
	}
	wg.Wait()
	return errs
}

// tooLarge reports whether the topic, or the client before it, refused a
// record for its size.
func tooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge)
}

// permanent reports whether retrying a publish can never succeed.
func permanent(err error) bool {
	return tooLarge(err) || errors.Is(err, kerr.InvalidRecord) || errors.Is(err, kerr.CorruptMessage) ||
		errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed) ||
		errors.Is(err, kerr.InvalidTopicException) || errors.Is(err, kerr.InvalidRequiredAcks)
}

func headerOf(hs []store.Header, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
