package store

// A topic's incarnations. Offsets belong to one incarnation of a topic: when
// a topic is deleted and created again (or a new cluster is used, as every
// demo run does), its offsets start at zero, and the old ones must not make
// a group skip the new orders. So offsets, expired stretches and dead
// letters name the topic as name@id, with Kafka's topic id (KIP-516). The
// consumer decides where it starts by this rule and `foodpipe status` and
// the lab show it; all of them read it here.

import (
	"slices"
	"strings"
)

// Scope names the incarnation of topic whose Kafka id is id, as the tables
// name it: name@id, or the name alone when the broker gives no id.
func Scope(topic, id string) string {
	if id == "" {
		return topic
	}
	return topic + "@" + id
}

// isIncarnation reports whether scope names an incarnation of topic.
func isIncarnation(scope, topic string) bool {
	return scope == topic || strings.HasPrefix(scope, topic+"@")
}

// TopicOffsets are a group's stored offsets of one incarnation of a topic,
// and what it stored of the others.
type TopicOffsets struct {
	// Next is the next offset of each partition stored in this incarnation.
	Next map[int32]int64
	// Fresh are the partitions the group stored offsets of only in another
	// incarnation, with that incarnation: a member reads them from the log
	// start, as an offset of the old topic means nothing in the new one.
	Fresh map[int32]string
	// Earlier are the other incarnations the group stored offsets of.
	Earlier []string
}

// OffsetsOf sorts a group's stored offsets (GroupOffsets) by incarnation:
// those of scope, an incarnation of topic, apart from those of the others.
func OffsetsOf(all []StoredOffset, topic, scope string) TopicOffsets {
	o := TopicOffsets{Next: map[int32]int64{}, Fresh: map[int32]string{}}
	other := map[int32]string{}
	for _, so := range all {
		switch {
		case so.Topic == scope:
			o.Next[so.Partition] = so.Next
		case isIncarnation(so.Topic, topic):
			other[so.Partition] = so.Topic
			if !slices.Contains(o.Earlier, so.Topic) {
				o.Earlier = append(o.Earlier, so.Topic)
			}
		}
	}
	for p, s := range other {
		if _, ok := o.Next[p]; !ok {
			o.Fresh[p] = s
		}
	}
	return o
}
