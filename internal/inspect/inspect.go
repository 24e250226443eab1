// Package inspect is one read model of a topic's partitions as a group takes
// them up: what Kafka keeps of each (log start, last stable offset, high
// watermark, the group's committed offset, the topic's id), what the group's
// coordinator says (state, members, owners), and what PostgreSQL holds of the
// group (the offsets stored with the orders, the stretches recorded expired,
// offsets of earlier incarnations of the topic, the rows). It returns data
// and prints nothing: `foodpipe status` prints it, the lab draws its lanes
// from it.
package inspect

import (
	"context"

	"github.com/twmb/franz-go/pkg/kadm"

	"foodpipe/internal/kafka"
	"foodpipe/internal/store"
)

// Source is where a read model is read from.
type Source struct {
	Admin *kadm.Client
	// Store, when not nil, adds what PostgreSQL holds of the group; without
	// it, the model is Kafka's alone.
	Store *store.Store
	// Rows also counts the orders stored from each partition: a scan of the
	// orders table, which a look at a second group can do without.
	Rows bool
}

// Group is a group reading a topic, partition by partition.
type Group struct {
	Topic string
	// TopicID is Kafka's id of the topic (KIP-516), "" when the broker gives
	// none: a topic deleted and created again has a new one, and offsets are
	// stored by name and id (store.Scope).
	TopicID string
	Group   string
	State   string // Stable, PreparingRebalance, Empty, Dead; under KIP-848 also Assigning, Reconciling
	// Protocol is the group protocol the group runs: kafka.ProtocolClassic
	// or kafka.ProtocolConsumer (KIP-848), "" when Kafka knows no such
	// group. Under KIP-848 each member has an epoch and a target
	// assignment (kafka.MemberView), and the group an epoch: Epoch, and
	// AssignmentEpoch, the epoch the broker's target assignment is of.
	Protocol               string
	Epoch, AssignmentEpoch int32
	Members                []kafka.MemberView
	Partitions             []Partition
	// Earlier are other incarnations of the topic (name@id) the database
	// holds the group's offsets of: the topic was deleted and created again,
	// or another cluster was used.
	Earlier []string
	// DBErr is why what PostgreSQL holds is missing from the model: nil when
	// it was read, or when there was no store to read it from.
	DBErr error
}

// Partition is one partition of the topic as the group's members will take
// it up.
type Partition struct {
	Partition int32
	// LogStart is the oldest offset Kafka keeps.
	LogStart      int64
	HighWatermark int64
	// LastStable is the last stable offset: where a transaction still open
	// begins, else the high watermark. The group reads up to it.
	LastStable int64
	// Committed is the group's committed offset in Kafka, -1 when it has
	// none; CommittedBy is the commit's metadata, where foodpipe's members
	// put their client id ("" when nothing says).
	Committed   int64
	CommittedBy string
	// Owner is the owning member's client id as the coordinator describes
	// it, "" when none (and while the group rebalances).
	Owner string
	// Stored is the next offset stored in PostgreSQL with the group's
	// orders in this incarnation of the topic, -1 when none (or the
	// database was not read). A member resumes from it when it is ahead of
	// Committed.
	Stored int64
	// Fresh: the group stored offsets of this partition only in an earlier
	// incarnation of the topic, so a member reads it from the log start.
	Fresh bool
	// Lag is what the group has still to read: from its position (the
	// greater of Stored and Committed, or the log start) to the last stable
	// offset.
	Lag int64
	// CommittedLag is the lag as Kafka's own tools tell it: from the
	// committed offset (or the log start) alone, whatever the database holds.
	CommittedLag int64
	// Expired are the offsets Kafka deleted before the group read them:
	// recorded by a member, or (Recorded false) lying between the group's
	// position and the log start now, to be met by the next member.
	Expired []Expired
	// Rows is the orders stored from this partition, -1 when not counted.
	Rows int64
}

// Expired is a stretch of a partition, From to To inclusive, that Kafka
// deleted before the group read it.
type Expired struct {
	From, To int64
	// Recorded: a member met it and wrote it in expired_offsets.
	Recorded bool
}

// Lag is the partitions' lag summed: what the group has still to read.
func (g Group) Lag() int64 {
	var n int64
	for _, p := range g.Partitions {
		n += p.Lag
	}
	return n
}

// Read reads group on topic from src. An error is Kafka's (a topic that
// does not exist wraps kafka.ErrNoTopic); the database's is kept in
// Group.DBErr, as the model is worth having without it.
func Read(ctx context.Context, src Source, topic, group string) (Group, error) {
	g := Group{Topic: topic, Group: group}
	// The rows before the topic: a row counted is of a message below the
	// high watermark read after it, which only grows, so a partition never
	// shows more rows than it holds (counted the other way round, orders
	// stored between the two reads would be).
	var rows map[int32]int64
	if src.Store != nil && src.Rows {
		rows, g.DBErr = src.Store.CountByPartition(ctx)
	}
	view, err := kafka.InspectGroup(ctx, src.Admin, topic, group)
	if err != nil {
		return g, err
	}
	g.TopicID, g.State, g.Members = view.TopicID, view.State, view.Members
	g.Protocol, g.Epoch, g.AssignmentEpoch = view.Protocol, view.Epoch, view.AssignmentEpoch
	var rec record
	if src.Store != nil && g.DBErr == nil {
		rec, g.DBErr = readRecord(ctx, src.Store, group, topic, view.TopicID)
	}
	g.Earlier = rec.offsets.Earlier
	for _, p := range view.Partitions {
		ps := rec.partition(p)
		if rows != nil {
			ps.Rows = rows[p.Partition]
		}
		g.Partitions = append(g.Partitions, ps)
	}
	return g, nil
}

// record is what the database holds of a group on one incarnation of the
// topic: its stored offsets and the stretches it recorded expired.
type record struct {
	offsets store.TopicOffsets
	expired map[int32][]store.ExpiredRange
}

// readRecord reads the group's offsets and expired stretches of the topic
// with id.
func readRecord(ctx context.Context, st *store.Store, group, topic, id string) (record, error) {
	scope := store.Scope(topic, id)
	all, err := st.GroupOffsets(ctx, group)
	if err != nil {
		return record{}, err
	}
	exp, err := st.Expired(ctx, group, scope)
	if err != nil {
		return record{}, err
	}
	r := record{offsets: store.OffsetsOf(all, topic, scope), expired: map[int32][]store.ExpiredRange{}}
	for _, e := range exp {
		r.expired[e.Partition] = append(r.expired[e.Partition], e)
	}
	return r, nil
}

// Position is where the group's next member takes the partition up: the
// greater of the committed offset and the stored one, -1 for none (or for
// offsets of an earlier incarnation only).
func (p Partition) Position() int64 {
	if p.Fresh {
		return -1
	}
	return max(p.Committed, p.Stored)
}

// partition is partition p as the group's members will take it up: from the
// stored offset when it is ahead of the committed one, from the log start
// when the group's offsets of it belong to an earlier incarnation of the
// topic; offsets below the log start from there expired unread.
func (r record) partition(p kafka.PartitionView) Partition {
	ps := Partition{Partition: p.Partition, LogStart: p.Start, HighWatermark: p.HighWatermark, LastStable: p.Stable,
		Committed: p.Committed, CommittedBy: p.CommittedBy, Owner: p.Owner, Stored: -1, CommittedLag: p.Lag,
		Expired: []Expired{}, Rows: -1}
	if n, ok := r.offsets.Next[p.Partition]; ok {
		ps.Stored = n
	}
	_, ps.Fresh = r.offsets.Fresh[p.Partition]
	pos := ps.Position()
	for _, e := range r.expired[p.Partition] {
		ps.Expired = append(ps.Expired, Expired{From: e.From, To: e.To, Recorded: true})
	}
	if pos >= 0 && pos < p.Start {
		ps.Expired = append(ps.Expired, Expired{From: pos, To: p.Start - 1})
	}
	ps.Lag = max(p.Stable-max(pos, p.Start, 0), 0)
	return ps
}
