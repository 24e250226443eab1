package store

// The notifier's store: what `foodpipe notify` has done about each order
// (see migrations/00007_create_notifications.sql and package notify).

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Notifications keeps the notifier group's claims and outcomes, with the
// group's offsets, behind the same offset fence as the orders.
type Notifications struct{ s *Store }

// Notifications is the notifier's store on s's pool.
func (s *Store) Notifications() *Notifications { return &Notifications{s: s} }

// Notice is the email about one row of a batch.
type Notice struct {
	OrderID   string
	To        string
	MessageID string
}

// Claimed says which of a batch's orders are to be sent.
type Claimed struct {
	// Open are the order ids claimed for sending by this call: never sent,
	// or claimed before without an outcome recorded.
	Open map[string]bool
	// TakenOver are the open ones another sender claimed before and never
	// settled: it ended (a crash, a kill) between its claim and its record,
	// so their email may already have reached the server. Each such claim
	// adds one to the row's in_doubt.
	TakenOver []string
}

// claimNotices claims each notice for sender: a new row in state 'sending',
// or a row still 'sending' claimed again (one more in in_doubt when
// another sender had it). Rows 'sent' or 'refused' are left
// alone and not returned.
const claimNotices = `INSERT INTO notifications AS n (group_id, order_id, recipient, message_id, state, sender)
SELECT $1, order_id, recipient, message_id, 'sending', $5
FROM unnest($2::text[], $3::text[], $4::text[]) AS t(order_id, recipient, message_id)
ON CONFLICT (group_id, order_id) DO UPDATE
	SET in_doubt = n.in_doubt + (n.sender <> EXCLUDED.sender)::int,
		taken_from = CASE WHEN n.sender <> EXCLUDED.sender THEN n.sender END,
		sender = EXCLUDED.sender, claims = n.claims + 1, claimed_at = now()
	WHERE n.state = 'sending'
RETURNING n.order_id, n.taken_from IS NOT NULL`

// Claim claims a batch's notices for sender (one name per process: a
// process that retries its own claim is not in doubt of itself), in a
// transaction of its own, committed before any email is sent. A batch that
// starts below a partition's stored offset claims nothing and fails with
// ErrStaleOffsets, as WriteBatch does: another member has settled it.
func (n *Notifications) Claim(ctx context.Context, group, sender string, offsets []PartitionOffset, notices []Notice) (Claimed, error) {
	c := Claimed{Open: map[string]bool{}}
	tx, err := n.s.pool.Begin(ctx)
	if err != nil {
		return c, fmt.Errorf("claim notices: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, batchLimits); err != nil {
		return c, fmt.Errorf("claim notices: set the transaction's limits: %w", err)
	}
	for _, po := range offsets {
		var next int64
		err := tx.QueryRow(ctx, `SELECT next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND kafka_partition = $3`,
			group, po.Topic, po.Partition).Scan(&next)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return c, fmt.Errorf("claim notices: read offsets: %w", err)
		}
		if next > po.From {
			return c, fmt.Errorf("%w: group %s, %s/%d stored up to offset %d, batch starts at %d",
				ErrStaleOffsets, group, po.Topic, po.Partition, next, po.From)
		}
	}
	if len(notices) > 0 {
		ids := make([]string, len(notices))
		tos := make([]string, len(notices))
		mids := make([]string, len(notices))
		for i, x := range notices {
			ids[i], tos[i], mids[i] = x.OrderID, cleanText(x.To), cleanText(x.MessageID)
		}
		rows, err := tx.Query(ctx, claimNotices, group, ids, tos, mids, sender)
		if err != nil {
			return c, fmt.Errorf("claim notices: %w", err)
		}
		for rows.Next() {
			var id string
			var taken bool
			if err := rows.Scan(&id, &taken); err != nil {
				rows.Close()
				return c, fmt.Errorf("claim notices: %w", err)
			}
			c.Open[id] = true
			if taken {
				c.TakenOver = append(c.TakenOver, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return c, fmt.Errorf("claim notices: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return c, fmt.Errorf("claim notices: commit: %w", err)
	}
	return c, nil
}

// settleNotices records the outcome of the claimed notices.
const settleNotices = `UPDATE notifications n SET state = i.state, reason = i.reason, done_at = now()
FROM unnest($2::text[], $3::text[], $4::text[]) AS i(order_id, state, reason)
WHERE n.group_id = $1 AND n.order_id = i.order_id AND n.state = 'sending'`

// Record stores what became of a batch's emails and the group's next
// offsets in one transaction: sent are the order ids whose email the server
// took, refused those whose address it refused for good (each error wraps
// ErrRefused), recorded with the batch's dead letters as b.SetAside
// describes them. Every other row of the batch was settled before and is
// reported as a duplicate. b.Dead is not recorded: the messages that are
// not orders are the orders group's to set aside. As with WriteBatch, a
// batch behind the stored offsets writes nothing and fails with
// ErrStaleOffsets.
func (n *Notifications) Record(ctx context.Context, b Batch, sent map[string]bool, refused map[string]error) (Result, error) {
	if err := b.validate(); err != nil {
		return Result{}, err
	}
	b.Dead = nil
	w := newBatchWrite(&b)
	var ids, states, reasons []string
	for _, i := range w.unique {
		id := b.Rows[i].Order.OrderID
		switch {
		case sent[id]:
			ids, states, reasons = append(ids, id), append(states, "sent"), append(reasons, "")
		case refused[id] != nil:
			err := refused[id]
			if !errors.Is(err, ErrRefused) {
				err = fmt.Errorf("%w: %w", ErrRefused, err)
			}
			if w.errs == nil {
				w.errs = map[int]error{}
			}
			w.fates[i], w.errs[i] = rejected, err
			ids, states, reasons = append(ids, id), append(states, "refused"), append(reasons, cleanText(err.Error()))
			if b.SetAside != nil {
				b.Dead = append(b.Dead, b.SetAside(b.Rows[i], err))
			}
		default:
			w.fates[i] = duplicate
		}
	}
	if len(ids) == 0 && len(b.Offsets) == 0 {
		res := w.result()
		res.DeadSkipped = true
		return res, nil
	}
	// The outcomes travel with the BEGIN and the offset fence, in one round
	// trip (Store.begin), and so does the COMMIT of a batch that records no
	// dead letter and no expired stretch, the usual one.
	commit := len(b.Dead) == 0 && len(b.Expired) == 0
	tx, end, err := n.s.begin(ctx, w, func(q *pgx.Batch) string {
		if len(ids) > 0 {
			q.Queue(settleNotices, b.Group, ids, states, reasons)
		}
		return "record notices"
	}, commit)
	if err != nil {
		n.s.resetIfReadOnly(err)
		return Result{}, fmt.Errorf("record notices: %w", err)
	}
	defer end()
	if !commit {
		saved := b.SetAside
		b.SetAside = nil // the refused are in b.Dead already
		err = w.storeDead(ctx, tx)
		b.SetAside = saved
		if err != nil {
			return Result{}, fmt.Errorf("record notices: %w", err)
		}
		if err := tx.Commit(ctx); err != nil {
			n.s.resetIfReadOnly(err)
			return Result{}, fmt.Errorf("record notices: commit: %w", err)
		}
	}
	res := w.result()
	res.DeadSkipped = true
	return res, nil
}

// NoticeCount is a group's notifications by state.
type NoticeCount struct {
	Sending, Sent, Refused int64
	// InDoubt is how many times an email was sent again after a sender
	// ended between its claim and its record: the most duplicates the
	// receiver can hold.
	InDoubt int64
	// Resent is the part of InDoubt whose rows say 'sent': emails the server
	// took again, each a duplicate at the receiver when the first send had
	// reached it too (the rest were refused again, or never got out).
	Resent int64
}

// CountNotices counts group's notifications by state: of the orders ids,
// or of every order when ids is nil.
func (n *Notifications) CountNotices(ctx context.Context, group string, ids []string) (NoticeCount, error) {
	var c NoticeCount
	err := n.s.pool.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE state = 'sending'), count(*) FILTER (WHERE state = 'sent'),
		count(*) FILTER (WHERE state = 'refused'), coalesce(sum(in_doubt), 0),
		coalesce(sum(in_doubt) FILTER (WHERE state = 'sent'), 0)
		FROM notifications WHERE group_id = $1 AND ($2::text[] IS NULL OR order_id = ANY($2))`, group, ids).Scan(&c.Sending, &c.Sent, &c.Refused, &c.InDoubt, &c.Resent)
	if err != nil {
		return c, fmt.Errorf("count notifications: %w", err)
	}
	return c, nil
}

// Sending lists group's order ids claimed and not yet settled: the batches
// in hand of the notifiers running, or left in doubt by one that ended.
func (n *Notifications) Sending(ctx context.Context, group string) ([]string, error) {
	rows, err := n.s.pool.Query(ctx, `SELECT order_id FROM notifications WHERE group_id = $1 AND state = 'sending' ORDER BY order_id`, group)
	if err != nil {
		return nil, fmt.Errorf("notifications being sent: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("notifications being sent: %w", err)
	}
	return ids, nil
}

// Offsets, GroupOffsets, Writable and PublishDeadLetters are the Store's:
// the notifier's offsets and dead letters live where every group's do.

// Offsets returns the next offset to read per partition, as stored.
func (n *Notifications) Offsets(ctx context.Context, group, topic string) (map[int32]int64, error) {
	return n.s.Offsets(ctx, group, topic)
}

// GroupOffsets returns every next offset stored for group (see Store.GroupOffsets).
func (n *Notifications) GroupOffsets(ctx context.Context, group string) ([]StoredOffset, error) {
	return n.s.GroupOffsets(ctx, group)
}

// Writable checks that the server answers and takes writes.
func (n *Notifications) Writable(ctx context.Context) error { return n.s.Writable(ctx) }

// PublishDeadLetters publishes the group's recorded dead letters (see
// Store.PublishDeadLetters).
func (n *Notifications) PublishDeadLetters(ctx context.Context, group string, limit int,
	publish func(context.Context, []DeadLetter) []error) (int, error) {
	return n.s.PublishDeadLetters(ctx, group, limit, publish)
}
