package consumer

// The topic as it changes under a running group: operators delete and
// create it again, and retention deletes what a group has not read in time.
// Neither may make a member skip orders silently, nor loop on an error.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/store"
)

// errTopicRecreated ends a session: the topic was deleted and created again,
// and a group client keeps reading the topic id it first saw (franz-go never
// adopts a new one), so a new session is needed to read the new topic.
var errTopicRecreated = errors.New("topic recreated")

// topicScope is the incarnation of the topic a session reads.
type topicScope struct {
	// name is how offsets and dead letters are stored: name@id.
	name string
	id   kadm.TopicID
}

// offsetScope names the incarnation of the topic this session reads as the
// tables name it (store.Scope: name@id, with Kafka's topic id). It is
// looked up once per session.
func (c *Consumer) offsetScope(ctx context.Context) (string, error) {
	if s := c.scope.Load(); s != nil {
		return s.name, nil
	}
	id, exists, err := c.topicID(ctx)
	if err != nil {
		return "", err
	}
	if !exists {
		return "", fmt.Errorf("topic %s does not exist", c.cfg.Topic)
	}
	s := &topicScope{name: c.cfg.Topic, id: id}
	if id != (kadm.TopicID{}) {
		s.name = store.Scope(c.cfg.Topic, id.String())
	}
	c.scope.Store(s)
	return s.name, nil
}

// topicID asks a broker for the topic's id now.
func (c *Consumer) topicID(ctx context.Context) (id kadm.TopicID, exists bool, err error) {
	md, err := kadm.NewClient(c.pub).ListTopics(ctx, c.cfg.Topic)
	if err != nil {
		return id, false, fmt.Errorf("read topic metadata: %w", err)
	}
	td, ok := md[c.cfg.Topic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return id, false, nil
	}
	if td.Err != nil {
		return id, false, fmt.Errorf("read topic metadata: %w", td.Err)
	}
	return td.ID, true, nil
}

// adjustOffsets decides where each assigned partition starts. The database
// is the authority, as it stores the offsets with the orders:
//   - its offset, when it is ahead of Kafka's committed one (a consumer
//     crashed after its database commit but before its Kafka commit);
//   - the start of the log, for a partition the group stored offsets of only
//     in an earlier incarnation of the topic (store.OffsetsOf): the topic was
//     deleted and created again, and an offset Kafka kept for the old topic
//     means nothing in the new one (orders of the new topic that were stored
//     already would be recognised by order_id);
//   - otherwise Kafka's committed offset, or the log start for a new group.
//
// A start below the log start means Kafka deleted messages the group never
// read: that is said and counted (noteExpired), never skipped silently.
func (c *Consumer) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	scope, err := c.offsetScope(ctx)
	if err != nil {
		return nil, err
	}
	all, err := c.store.GroupOffsets(ctx, c.cfg.Group)
	if err != nil {
		return nil, fmt.Errorf("read stored offsets: %w", err)
	}
	stored := store.OffsetsOf(all, c.cfg.Topic, scope)
	from := map[int32]int64{} // where each partition starts, where known
	var fresh []int32
	var old string
	for p, o := range offsets[c.cfg.Topic] {
		committed := o.EpochOffset().Offset
		next, ok := stored.Next[p]
		switch {
		case ok && next > committed:
			c.log.Info("resuming from the database's offset", slog.Int("partition", int(p)),
				slog.Int64("kafka_committed", committed), slog.Int64("stored", next))
			offsets[c.cfg.Topic][p] = kgo.NewOffset().At(next).WithEpoch(-1)
			from[p] = next
			c.commits.resume(c.cfg.Topic, p, next)
		case stored.Fresh[p] != "":
			fresh, old = append(fresh, p), stored.Fresh[p]
			offsets[c.cfg.Topic][p] = kgo.NewOffset().AtStart()
		case committed >= 0:
			from[p] = committed
		}
	}
	if len(fresh) > 0 && c.saidFresh.Swap(scope) != scope {
		c.log.Info("the group's stored offsets of these partitions belong to another topic of this name (deleted and created again, or on another cluster): they are read from the start of their log; orders stored before stay stored",
			slog.String("topic", c.cfg.Topic), slog.String("stored_for", old), slog.String("now", scope), slog.Any("partitions", fresh))
	}
	c.startAt(ctx, scope, from)
	return offsets, nil
}

// startAt records where the session starts each partition and notes the
// stretches Kafka deleted below the log start.
func (c *Consumer) startAt(ctx context.Context, scope string, from map[int32]int64) {
	c.posMu.Lock()
	for p, f := range from {
		c.next[p] = f
	}
	c.posMu.Unlock()
	if len(from) == 0 {
		return
	}
	starts, err := kadm.NewClient(c.pub).ListStartOffsets(ctx, c.cfg.Topic)
	if err != nil {
		// The first fetch of each partition tells its log start too.
		c.log.Warn("could not read the log start offsets", slog.Any("err", err))
		return
	}
	starts.Each(func(o kadm.ListedOffset) {
		if f, ok := from[o.Partition]; ok && o.Topic == c.cfg.Topic && o.Err == nil && f < o.Offset {
			c.noteExpired(scope, o.Partition, f, o.Offset-1)
		}
	})
}

// checkFetched notes, for each partition fetched, a stretch between the
// offset this member expected next and the first one fetched that lies
// below the log start: Kafka deleted it while the group was behind, and the
// client moved on to the log start. (Other holes are no loss: a transaction
// marker or an aborted transaction's records take offsets too, and are not
// delivered to a read_committed consumer.)
func (c *Consumer) checkFetched(ctx context.Context, fetches kgo.Fetches) error {
	var gaps []store.ExpiredRange
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if len(fp.Records) == 0 || fp.LogStartOffset < 0 {
			return
		}
		first := fp.Records[0].Offset
		c.posMu.Lock()
		want, ok := c.next[fp.Partition]
		c.posMu.Unlock()
		if ok && first > want && want < fp.LogStartOffset {
			gaps = append(gaps, store.ExpiredRange{Partition: fp.Partition, From: want, To: min(first, fp.LogStartOffset) - 1})
		}
	})
	if len(gaps) == 0 {
		return nil
	}
	scope, err := c.offsetScope(ctx)
	if err != nil {
		return err
	}
	for _, g := range gaps {
		c.noteExpired(scope, g.Partition, g.From, g.To)
	}
	return nil
}

// noteExpired says, once, that offsets from to to (inclusive) of partition
// p expired before the group read them: an ERROR line, the metric, an
// event. The range is recorded in the database with the partition's next
// batch (Batch.Expired), which stores the offset past it.
func (c *Consumer) noteExpired(scope string, p int32, from, to int64) {
	r := store.ExpiredRange{Topic: scope, Partition: p, From: from, To: to}
	key := expiredKey{scope, p, from}
	c.posMu.Lock()
	c.pendingExpired[key] = r
	said := c.saidExpired[key]
	c.saidExpired[key] = true
	c.posMu.Unlock()
	if said {
		return
	}
	c.cfg.Metrics.MessagesExpired.Add(float64(r.Count()))
	c.log.Error("messages expired before the group read them: Kafka deleted them (the topic's retention passed, or records were deleted) and they were neither stored nor dead-lettered",
		slog.String("group", c.cfg.Group), slog.String("topic", c.cfg.Topic), slog.Int("partition", int(p)),
		slog.Int64("from_offset", from), slog.Int64("to_offset", to), slog.Int64("count", r.Count()))
	c.observe(Expired{Member: c.cfg.ID, At: time.Now(), Partition: p, From: from, To: to})
}

// expiredKey names one expired stretch.
type expiredKey struct {
	scope     string
	partition int32
	from      int64
}

// expiredOf returns the expired stretches still to record of the partitions
// batch b covers.
func (c *Consumer) expiredOf(b *store.Batch) []store.ExpiredRange {
	c.posMu.Lock()
	defer c.posMu.Unlock()
	if len(c.pendingExpired) == 0 {
		return nil
	}
	var out []store.ExpiredRange
	for _, po := range b.Offsets {
		for k, r := range c.pendingExpired {
			if k.scope == po.Topic && k.partition == po.Partition {
				out = append(out, r)
			}
		}
	}
	return out
}

// stored moves each partition of a stored batch past it, and forgets the
// expired stretches the batch recorded.
func (c *Consumer) stored(b *store.Batch) {
	c.posMu.Lock()
	defer c.posMu.Unlock()
	for _, po := range b.Offsets {
		c.next[po.Partition] = po.Next
	}
	for _, r := range b.Expired {
		delete(c.pendingExpired, expiredKey{r.Topic, r.Partition, r.From})
	}
}

// forget drops what this member knew of partitions it no longer owns.
func (c *Consumer) forget(parts []int32) {
	c.posMu.Lock()
	defer c.posMu.Unlock()
	for _, p := range parts {
		delete(c.next, p)
		for k := range c.pendingExpired {
			if k.partition == p {
				delete(c.pendingExpired, k)
			}
		}
	}
}

// checkTopic looks the topic up after a fetch found it unknown. A topic that
// is gone is waited for, said once; one with another id now was deleted and
// created again, and the session ends with errTopicRecreated so that the
// next one reads the new topic.
func (c *Consumer) checkTopic(ctx context.Context) error {
	id, exists, err := c.topicID(ctx)
	if err != nil {
		return nil //nolint:nilerr // cannot tell now; the next fetch error asks again
	}
	if !exists {
		if !c.topicGone.Swap(true) {
			c.log.Error("the topic does not exist (deleted?): waiting for it to be created; nothing is read until then",
				slog.String("topic", c.cfg.Topic))
		}
		return nil
	}
	c.topicGone.Store(false)
	cur := c.scope.Load()
	if cur != nil && cur.id == id {
		return nil
	}
	old := "unknown"
	if cur != nil {
		old = cur.id.String()
	}
	c.log.Warn("the topic was deleted and created again: starting a new session to read the new topic",
		slog.String("topic", c.cfg.Topic), slog.String("old_id", old), slog.String("new_id", id.String()))
	c.observe(TopicRecreated{Member: c.cfg.ID, At: time.Now(), OldID: old, NewID: id.String()})
	return errTopicRecreated
}

// isUnknownTopic reports whether a fetch error says the topic, or the id
// the client holds for it, is unknown to the broker.
func isUnknownTopic(err error) bool {
	return errors.Is(err, kerr.UnknownTopicID) || errors.Is(err, kerr.UnknownTopicOrPartition)
}
