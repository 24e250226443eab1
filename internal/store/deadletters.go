package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// DeadLetter is a message set aside, with why. It is written to the
// dead_letters table in the transaction of the batch it came from, so it is
// durable before the offset that covers it is stored, and published to the
// dead-letter topic after the commit (see PublishDeadLetters).
type DeadLetter struct {
	ID        int64  // set when read back
	Scope     string // the topic as consumer_offsets names it (PartitionOffset.Topic)
	Topic     string // the topic the message was read from
	Partition int32
	Offset    int64
	Reason    string
	Error     string
	Key       []byte
	Value     []byte
	Headers   []Header // the original message's, in order
	FailedAt  time.Time
}

// Header is one Kafka record header.
type Header struct {
	Key   string
	Value []byte
}

const insertDeadLetter = `INSERT INTO dead_letters (group_id, topic_scope, source_topic, source_partition, source_offset,
	reason, error, msg_key, msg_value, header_keys, header_values, failed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (group_id, topic_scope, source_partition, source_offset) DO NOTHING`

// storeDead records the batch's dead letters in its transaction: those the
// caller set aside before the write, and the rows the write itself refused
// (conflicting duplicates, rows PostgreSQL rejected), described by
// Batch.SetAside.
func (w *batchWrite) storeDead(ctx context.Context, tx pgx.Tx) error {
	dead := w.b.Dead
	// Only a row found stored, repeated in the batch or refused can be set
	// aside here: a batch of new orders (the usual one) skips settling
	// every row's fate a second time.
	if w.b.SetAside != nil && (w.existing > 0 || len(w.errs) > 0 || len(w.unique) < len(w.b.Rows)) {
		res := w.result()
		dead = slices.Clip(dead)
		for _, r := range res.Conflicts {
			dead = append(dead, w.b.SetAside(r, fmt.Errorf("%w: order %s", ErrConflict, r.Order.OrderID)))
		}
		for _, r := range res.Rejected {
			dead = append(dead, w.b.SetAside(r.Row, r.Err))
		}
	}
	w.dead = len(dead)
	if len(dead) == 0 {
		return nil
	}
	var b pgx.Batch
	for _, d := range dead {
		keys := make([][]byte, len(d.Headers))
		vals := make([][]byte, len(d.Headers))
		for i, h := range d.Headers {
			keys[i], vals[i] = []byte(h.Key), h.Value
		}
		at := d.FailedAt
		if at.IsZero() {
			at = time.Now()
		}
		b.Queue(insertDeadLetter, w.b.Group, d.Scope, cleanText(d.Topic), d.Partition, d.Offset,
			cleanText(d.Reason), cleanText(d.Error), d.Key, d.Value, keys, vals, at)
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("record dead letters: %w", err)
	}
	return nil
}

// cleanText makes s storable as PostgreSQL text, which holds neither NUL
// nor invalid UTF-8: an error message may quote hostile bytes.
func cleanText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

const pendingDeadLetters = `SELECT id, topic_scope, source_topic, source_partition, source_offset, reason, error,
	msg_key, msg_value, header_keys, header_values, failed_at
FROM dead_letters WHERE group_id = $1 AND published_at IS NULL AND publish_error IS NULL
ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`

// ErrUnpublishable marks a publish error that retrying can never fix (the
// letter is too large for the topic even cut down, the topic refuses it or
// the client may not write there). Such a letter is kept with the error and
// not tried again.
var ErrUnpublishable = errors.New("the dead-letter topic cannot take it")

// PublishDeadLetters hands up to limit of the group's unpublished dead
// letters, oldest first, to publish, which returns one error per letter, in
// order: nil marks it published, an error wrapping ErrUnpublishable records
// that error with it (it is not tried again), and any other error leaves it
// pending, to be tried again. The letters stay locked while publish runs, so
// that consumers of the same group publishing at once never send one letter
// twice; a letter whose publisher dies stays pending. It returns how many
// letters it settled (published or unpublishable).
func (s *Store) PublishDeadLetters(ctx context.Context, group string, limit int,
	publish func(context.Context, []DeadLetter) []error) (_ int, err error) {
	defer func() { s.resetIfReadOnly(err) }()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	rows, err := tx.Query(ctx, pendingDeadLetters, group, limit)
	if err != nil {
		return 0, fmt.Errorf("read dead letters: %w", err)
	}
	dead, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeadLetter, error) {
		var d DeadLetter
		var keys, vals [][]byte
		err := r.Scan(&d.ID, &d.Scope, &d.Topic, &d.Partition, &d.Offset, &d.Reason, &d.Error,
			&d.Key, &d.Value, &keys, &vals, &d.FailedAt)
		for i := range min(len(keys), len(vals)) {
			d.Headers = append(d.Headers, Header{Key: string(keys[i]), Value: vals[i]})
		}
		return d, err
	})
	if err != nil {
		return 0, fmt.Errorf("read dead letters: %w", err)
	}
	if len(dead) == 0 {
		return 0, nil
	}
	errs := publish(ctx, dead)
	var ids, failedIDs []int64
	var failed []string
	for i, d := range dead {
		switch {
		case i >= len(errs):
		case errs[i] == nil:
			ids = append(ids, d.ID)
		case errors.Is(errs[i], ErrUnpublishable):
			failedIDs, failed = append(failedIDs, d.ID), append(failed, cleanText(errs[i].Error()))
		}
	}
	if len(ids)+len(failedIDs) == 0 {
		return 0, nil
	}
	if _, err := tx.Exec(ctx, "UPDATE dead_letters SET published_at = now() WHERE id = ANY($1)", ids); err != nil {
		return 0, fmt.Errorf("mark dead letters published: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE dead_letters d SET publish_error = f.err
		FROM unnest($1::bigint[], $2::text[]) AS f(id, err) WHERE d.id = f.id`, failedIDs, failed); err != nil {
		return 0, fmt.Errorf("mark dead letters unpublishable: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("mark dead letters published: commit: %w", err)
	}
	return len(ids) + len(failedIDs), nil
}
