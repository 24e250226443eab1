package consumer

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/fault"
)

// commitEvery is how long the offsets a member has stored wait before they
// are committed to Kafka. Each batch's transaction stores its partitions'
// next offsets in PostgreSQL (the offset fence), and a member that takes a
// partition starts from there when it is ahead of Kafka's committed offset
// (adjustOffsets): for the guarantees, a Kafka commit is only a copy of what
// the database holds. A commit per batch cost a request, a round trip and
// a wake-up of the member and of the broker for every batch; at a few
// orders a second a batch holds one or two orders, and that was a quarter of
// a batch's system calls. Committed once a second instead, Kafka's committed
// offset, which `foodpipe status`, the lag and the lab read, is at most
// about a second behind the database's while orders flow, and equal to it a
// second after they stop. A member also commits what it holds when it gives
// partitions up (revoked) and when its session ends.
const commitEvery = time.Second

// commitWait bounds a commit: one that does not come back (a broker away)
// must not hold the polling goroutine, and with it rebalances, for long.
const commitWait = 5 * time.Second

// commits are the offsets this member has stored in PostgreSQL and not yet
// committed to Kafka: per partition, the last record stored. The polling
// goroutine adds to them and commits them (between a poll and
// AllowRebalance, so that no rebalance runs meanwhile); the revoke callback
// commits those of the partitions it gives up.
type commits struct {
	mu      sync.Mutex
	pending map[int32]*kgo.Record
	due     time.Time          // when the oldest pending record is to be committed; zero when none
	wake    context.CancelFunc // ends a poll in progress that waits with no deadline; nil when none
}

// add holds the highest record of each partition among recs.
func (cs *commits) add(recs []*kgo.Record) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.pending == nil {
		cs.pending = map[int32]*kgo.Record{}
	}
	for _, r := range recs {
		if p := cs.pending[r.Partition]; p == nil || p.Offset < r.Offset {
			cs.pending[r.Partition] = r
		}
	}
	if cs.due.IsZero() && len(cs.pending) > 0 {
		cs.due = time.Now().Add(commitEvery)
		if cs.wake != nil {
			// Added from outside the polling goroutine (a partition
			// assigned) while it waits on a quiet topic with no deadline:
			// its next poll has one.
			cs.wake()
		}
	}
}

// resume holds, for a partition this member takes whose offset in the
// database is ahead of Kafka's committed one, that offset to commit: its
// last owner stored records and stopped (killed, cut off) before it
// committed them. Without it Kafka would show them as lag until the next
// order of that partition is stored, which on a quiet topic is never.
func (cs *commits) resume(topic string, partition int32, next int64) {
	cs.add([]*kgo.Record{{Topic: topic, Partition: partition, Offset: next - 1, LeaderEpoch: -1}})
}

// deadline is when the pending records are to be committed; zero when none
// are pending.
func (cs *commits) deadline() time.Time {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.due
}

// take removes and returns the pending records of parts (all of them when
// parts is nil).
func (cs *commits) take(parts []int32) []*kgo.Record {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var out []*kgo.Record
	if parts == nil {
		for _, r := range cs.pending {
			out = append(out, r)
		}
		clear(cs.pending)
	} else {
		for _, p := range parts {
			if r := cs.pending[p]; r != nil {
				out = append(out, r)
				delete(cs.pending, p)
			}
		}
	}
	if len(cs.pending) == 0 {
		cs.due = time.Time{}
	}
	return out
}

// commitDue commits the pending records once commitEvery has passed since
// the oldest of them was stored.
func (c *Consumer) commitDue(ctx context.Context, cl *kgo.Client) {
	if due := c.commits.deadline(); !due.IsZero() && !time.Now().Before(due) {
		c.commitWithin(ctx, cl, nil, commitWait)
	}
}

// commitPending commits to Kafka the pending records of parts (all of them
// when parts is nil). A commit that fails is not retried: the database holds
// the position, and the next commit of the partition carries it further.
func (c *Consumer) commitPending(ctx context.Context, cl *kgo.Client, parts []int32) {
	recs := c.commits.take(parts)
	if len(recs) == 0 {
		return
	}
	// A crash here leaves Kafka's committed offset behind the database's:
	// the guide uses it to show a re-delivery being caught.
	fault.Crash("consumer.before-kafka-commit")
	if err := cl.CommitRecords(c.signCommit(ctx), recs...); err != nil {
		c.log.Warn("offset commit failed; the database holds the position", slog.Any("err", err))
	}
}

// commitWithin commits the pending records of parts (all when nil), waiting
// at most d: for a member that stops or gives partitions up, which must not
// hang on a broker that does not answer.
func (c *Consumer) commitWithin(ctx context.Context, cl *kgo.Client, parts []int32, d time.Duration) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	defer cancel()
	c.commitPending(cctx, cl, parts)
}

// pollContext bounds the next poll by the pending records' deadline, so that
// a member whose topic went quiet still commits what it stored: the poll
// returns then with no records (rebalances stay blocked until
// AllowRebalance, as after any poll), and the session commits.
func (c *Consumer) pollContext(ctx context.Context) (context.Context, context.CancelFunc) {
	cs := &c.commits
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if !cs.due.IsZero() {
		return context.WithDeadline(ctx, cs.due)
	}
	pctx, cancel := context.WithCancel(ctx)
	cs.wake = cancel
	return pctx, func() {
		cs.mu.Lock()
		cs.wake = nil
		cs.mu.Unlock()
		cancel()
	}
}
