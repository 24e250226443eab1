package consumer

import (
	"foodpipe/internal/store"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// How the consumer keeps track of failing writes: the retries' pacing, a
// schema that refuses batches, and the attempts of each batch in flight.

// newSchemaBackoff paces the retries of a batch the schema refuses: 1 s,
// then about twice as long each time, up to 30 s, since a person has to act.
func newSchemaBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = time.Second, 30*time.Second
	return b
}

// setSchemaError records why the database refuses batches, logging it once,
// with what to do; nil clears it once a batch goes through.
func (c *Consumer) setSchemaError(err error) {
	c.failMu.Lock()
	prev := c.schemaErr
	c.schemaErr = err
	c.failMu.Unlock()
	switch {
	case err == nil && prev != nil:
		c.log.Info("the database takes batches again; going on")
	case err != nil && (prev == nil || prev.Error() != err.Error()):
		c.log.Error("the database refuses the batch for its schema or grants: paused, holding the batch, trying again with backoff; apply the migrations (foodpipe migrate up) or restore the table, column or grant",
			slog.Any("err", err))
	}
}

func (c *Consumer) schemaError() error {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	return c.schemaErr
}

// batchFailed counts one more failed attempt of batch b; batchDone forgets
// it; worstBatch is the most failed attempts of any batch in flight.
func (c *Consumer) batchFailed(b *store.Batch) {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	if c.failing == nil {
		c.failing = map[*store.Batch]int{}
	}
	c.failing[b]++
}

func (c *Consumer) batchDone(b *store.Batch) {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	delete(c.failing, b)
}

func (c *Consumer) worstBatch() int {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	worst := 0
	for _, n := range c.failing {
		worst = max(worst, n)
	}
	return worst
}

// newBackoff waits 200 ms, then about twice as long each time, up to 5 s.
func newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 200*time.Millisecond, 5*time.Second
	return b
}
