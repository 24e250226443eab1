package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/producer"
)

// Dead-letter headers. The value of a dead letter is the original message,
// byte for byte, so that it can be inspected and replayed after a fix.
const (
	HeaderReason          = "dlq.reason"
	HeaderError           = "dlq.error"
	HeaderSourceTopic     = "dlq.source.topic"
	HeaderSourcePartition = "dlq.source.partition"
	HeaderSourceOffset    = "dlq.source.offset"
	HeaderGroup           = "dlq.group"
	HeaderFailedAt        = "dlq.failed_at"
)

// Reasons the consumer itself gives, beside the validation reasons of package order.
const (
	// ReasonConflict: an order_id already stored with other content. The
	// stored order is kept; the newcomer is set aside for a person to judge.
	ReasonConflict = "conflicting_duplicate"
	// ReasonRejected: PostgreSQL refused the row although it passed validation.
	ReasonRejected = "db_rejected"
)

type deadLetter struct {
	rec    *kgo.Record
	reason string
	err    error
}

// sendDead publishes dead letters and waits until Kafka has them all. A
// failure is retried until ctx ends: the offsets that cover a dead letter
// must not be stored before it is safe.
func (c *Consumer) sendDead(ctx context.Context, dead []deadLetter) error {
	if len(dead) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, len(dead))
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i, d := range dead {
		r := d.rec
		headers := append([]kgo.RecordHeader{
			{Key: HeaderReason, Value: []byte(d.reason)},
			{Key: HeaderError, Value: []byte(d.err.Error())},
			{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
			{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
			{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
			{Key: HeaderGroup, Value: []byte(c.cfg.Group)},
			{Key: HeaderFailedAt, Value: []byte(now)},
		}, r.Headers...)
		recs[i] = &kgo.Record{Topic: c.cfg.DLQTopic, Key: r.Key, Value: r.Value, Headers: headers}
		c.cfg.Metrics.OrdersInvalid.WithLabelValues(d.reason).Inc()
		c.log.Warn("message sent to the dead-letter topic", slog.String("order_id", headerValue(r, producer.HeaderOrderID)),
			slog.String("reason", d.reason), slog.String("error", d.err.Error()),
			slog.Int("partition", int(r.Partition)), slog.Int64("offset", r.Offset))
	}
	wait := newBackoff()
	for attempt := 1; ; attempt++ {
		// Fresh records each attempt: the client owns a record until its
		// produce has finished.
		try := make([]*kgo.Record, len(recs))
		for i, r := range recs {
			try[i] = &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Headers: r.Headers}
		}
		err := c.cl.ProduceSync(ctx, try...).FirstErr()
		if err == nil {
			c.invalid.Add(int64(len(recs)))
			c.cfg.Metrics.DLQ.Add(float64(len(recs)))
			return nil
		}
		c.log.Warn("dead-letter publish failed, retrying", slog.Int("attempt", attempt), slog.Any("err", err))
		select {
		case <-time.After(wait.NextBackOff()):
		case <-ctx.Done():
			return fmt.Errorf("publish dead letters: %w", err)
		}
	}
}

func headerValue(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
