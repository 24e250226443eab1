package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadTopic reads a topic from its start to the end it has now, then stops:
// it never waits for messages that may come later. base are the client
// options (ClientOpts); the records come back in partition and offset order.
// A fetch error fails the read: a partial answer would look complete.
func ReadTopic(ctx context.Context, base []kgo.Opt, adm *kadm.Client, topic string) ([]*kgo.Record, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("start offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	var ferr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			ferr = fmt.Errorf("%s: %w", topic, o.Err)
			return
		}
		start := int64(0)
		if s, ok := starts.Lookup(topic, o.Partition); ok {
			start = s.Offset
		}
		if o.Offset > start {
			want[o.Partition] = o.Offset
			from[o.Partition] = kgo.NewOffset().At(start)
		}
	})
	if ferr != nil {
		return nil, ferr
	}
	if len(want) == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(append(slices.Clone(base), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var recs []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", topic, err)
		}
		var fetchErr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				fetchErr = errors.Join(fetchErr, fmt.Errorf("read %s partition %d: %w", t, p, err))
			}
		})
		if fetchErr != nil {
			return nil, fetchErr
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset < end {
				recs = append(recs, r)
				if r.Offset+1 >= end {
					delete(want, r.Partition)
				}
			}
		})
	}
	slices.SortFunc(recs, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	return recs, nil
}

// GroupView is one look at a consumer group reading a topic: each
// partition's high watermark, the group's committed offset and lag, the
// members and what they own.
type GroupView struct {
	// TopicID is Kafka's id of the topic (KIP-516): a topic deleted and
	// created again under the same name has a new one.
	TopicID string
	State   string // Stable, PreparingRebalance, Empty, Dead; under KIP-848 also Assigning, Reconciling
	// Protocol is the group protocol the group runs: ProtocolClassic, or
	// ProtocolConsumer for KIP-848's, "" when the broker knows no such
	// group.
	Protocol string
	// Epoch is a KIP-848 group's epoch: it goes up with every change of its
	// members or their subscriptions. AssignmentEpoch is the group epoch
	// the broker's target assignment was computed for; while it lags Epoch
	// a new one is being computed. Both 0 under the classic protocol.
	Epoch, AssignmentEpoch int32
	Partitions             []PartitionView
	Members                []MemberView
}

// The group protocols InspectGroup tells apart (GroupView.Protocol), named
// as Kafka's group.protocol names them.
const (
	ProtocolClassic  = "classic"
	ProtocolConsumer = "consumer"
)

// PartitionView is one partition of the topic, as the group sees it.
type PartitionView struct {
	Partition     int32
	Start         int64 // the oldest offset kept
	HighWatermark int64
	// Stable is the last stable offset: below it every transaction has
	// ended. A read_committed consumer, as foodpipe's are, reads up to it;
	// it is below the high watermark while a transaction is open.
	Stable    int64
	Committed int64 // -1 when the group has committed nothing
	// Lag is what the group has still to read: what lies between its
	// position (or, before its first commit, the oldest message kept) and
	// the last stable offset.
	Lag   int64
	Owner string // the owning member's client id, "" when none
	// CommittedBy is the metadata of the committed offset: foodpipe's
	// consumers put their client id there, so it names the member that last
	// committed the partition ("" when nothing says).
	CommittedBy string
}

// MemberView is one member of the group.
type MemberView struct {
	ClientID, Host, MemberID string
	// InstanceID is a static member's group.instance.id, "" for a dynamic one.
	InstanceID string
	Partitions []int32 // of the topic, in order: what it owns now
	// Epoch is a KIP-848 member's epoch: the group epoch whose assignment
	// it has caught up with (-2: a static member gone for a while, its
	// partitions kept for it); 0 under the classic protocol.
	Epoch int32
	// Target is a KIP-848 member's target assignment, of the topic, in
	// order: the partitions the broker means it to own. It owns each once
	// the member before has released it; nil under the classic protocol.
	Target []int32
}

// InspectGroup looks at group reading topic.
func InspectGroup(ctx context.Context, adm *kadm.Client, topic, group string) (GroupView, error) {
	var v GroupView
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return v, fmt.Errorf("list offsets: %w", err)
	}
	if _, ok := ends[topic]; !ok {
		return v, fmt.Errorf("%w: %s", ErrNoTopic, topic)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return v, fmt.Errorf("list offsets: %w", err)
	}
	stables, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return v, fmt.Errorf("list offsets: %w", err)
	}
	if md, err := adm.ListTopics(ctx, topic); err == nil {
		if td, ok := md[topic]; ok && td.Err == nil && td.ID != (kadm.TopicID{}) {
			v.TopicID = td.ID.String()
		}
	}
	if err := describeGroup(ctx, adm, topic, group, &v); err != nil {
		return v, err
	}
	owner := map[int32]string{}
	for _, m := range v.Members {
		for _, p := range m.Partitions {
			owner[p] = m.ClientID
		}
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		err = nil // no member has committed yet: everything is still to be read
	}
	if err != nil {
		return v, fmt.Errorf("fetch committed offsets of %s: %w", group, err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		pv := PartitionView{Partition: o.Partition, HighWatermark: o.Offset, Committed: -1, Owner: owner[o.Partition]}
		if c, ok := committed.Lookup(topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			pv.Committed = c.At
			pv.CommittedBy = c.Metadata
		}
		if s, ok := starts.Lookup(topic, o.Partition); ok {
			pv.Start = s.Offset
		}
		pv.Stable = o.Offset
		if s, ok := stables.Lookup(topic, o.Partition); ok && s.Err == nil && s.Offset >= 0 {
			pv.Stable = s.Offset
		}
		pv.Lag = max(pv.Stable-max(pv.Committed, pv.Start, 0), 0)
		v.Partitions = append(v.Partitions, pv)
	})
	slices.SortFunc(v.Partitions, func(a, b PartitionView) int { return int(a.Partition - b.Partition) })
	return v, nil
}

// describeGroup fills v's state, protocol and members from the group's
// coordinator. A KIP-848 group is described by ConsumerGroupDescribe, a
// classic one by DescribeGroups: Kafka 4 answers each only for a group of
// its protocol, and a broker before 4.0 knows only the second.
func describeGroup(ctx context.Context, adm *kadm.Client, topic, group string, v *GroupView) error {
	if cgs, err := adm.DescribeConsumerGroups(ctx, group); err == nil {
		if g, ok := cgs[group]; ok && g.Err == nil {
			v.State, v.Protocol, v.Epoch, v.AssignmentEpoch = g.State, ProtocolConsumer, g.Epoch, g.AssignmentEpoch
			for _, m := range g.Members {
				v.Members = append(v.Members, MemberView{
					ClientID: m.ClientID, Host: strings.TrimPrefix(m.ClientHost, "/"), MemberID: m.MemberID,
					InstanceID: deref(m.InstanceID), Epoch: m.MemberEpoch,
					Partitions: sortedOf(m.Assignment, topic), Target: sortedOf(m.TargetAssignment, topic),
				})
			}
			return nil
		}
	}
	groups, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe group %s: %w", group, err)
	}
	g, ok := groups[group]
	if !ok {
		return nil
	}
	v.State = g.State
	if g.Err == nil && g.State != "Dead" {
		v.Protocol = ProtocolClassic
	}
	for _, m := range g.Members {
		mv := MemberView{ClientID: m.ClientID, Host: strings.TrimPrefix(m.ClientHost, "/"), MemberID: m.MemberID,
			InstanceID: deref(m.InstanceID), Partitions: []int32{}}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				if t.Topic == topic {
					mv.Partitions = append(mv.Partitions, t.Partitions...)
				}
			}
		}
		slices.Sort(mv.Partitions)
		v.Members = append(v.Members, mv)
	}
	return nil
}

// sortedOf is the partitions of topic in s, in order, never nil.
func sortedOf(s kadm.TopicsSet, topic string) []int32 {
	ps := []int32{}
	for p := range s[topic] {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Lag is the group's lag summed over the partitions.
func (v GroupView) Lag() int64 {
	var n int64
	for _, p := range v.Partitions {
		n += p.Lag
	}
	return n
}

// Messages counts the messages a topic keeps now, over its partitions.
func Messages(ctx context.Context, adm *kadm.Client, topic string) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("list offsets: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("list offsets: %w", err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(topic, o.Partition); ok && o.Err == nil {
			n += o.Offset - s.Offset
		}
	})
	return n, nil
}
