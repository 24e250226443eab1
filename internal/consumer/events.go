package consumer

import "time"

// An Event is something a consumer reports as it happens, to the observer
// in Config.Observe: a live view, the lab, a test. The consumer keeps no
// history of them; whoever watches keeps what it needs. Observe is called on
// the goroutine where the event happens (a group callback, a batch writer)
// and must return quickly.
type Event interface {
	// Who is the member the event is about (Config.ID).
	Who() string
}

// Assigned: the partitions this member owns changed (an assignment, a
// revocation, or a loss of the group).
type Assigned struct {
	Member string
	At     time.Time
	Owned  []int32 // after the change, in order
	Lost   bool    // dropped from the group rather than revoked in a rebalance
}

// BatchStored: one batch of a partition is in PostgreSQL, its offsets and
// dead letters with it.
type BatchStored struct {
	Member      string
	At          time.Time
	Partition   int32
	Inserted    int // orders newly stored
	Duplicates  int // re-delivered orders already stored
	DeadLetters int // messages set aside for the dead-letter topic
}

// BreakerChanged: the database circuit breaker changed state (closed,
// open, half-open).
type BreakerChanged struct {
	Member   string
	At       time.Time
	From, To string
}

// Membership: the member left the group because its database is away, or
// joined again once it answers.
type Membership struct {
	Member  string
	At      time.Time
	InGroup bool
	Why     string
}

// Expired: Kafka deleted a stretch of a partition (its retention passed)
// before this member's group read it. Those messages are lost unread:
// neither stored nor dead-lettered.
type Expired struct {
	Member    string
	At        time.Time
	Partition int32
	From, To  int64 // offsets, inclusive
}

// TopicRecreated: the topic was deleted and created again under a new id;
// the member starts a new session on the new topic.
type TopicRecreated struct {
	Member       string
	At           time.Time
	OldID, NewID string
}

func (e Assigned) Who() string       { return e.Member }
func (e Expired) Who() string        { return e.Member }
func (e TopicRecreated) Who() string { return e.Member }
func (e BatchStored) Who() string    { return e.Member }
func (e BreakerChanged) Who() string { return e.Member }
func (e Membership) Who() string     { return e.Member }

// observe hands e to the observer, if there is one.
func (c *Consumer) observe(e Event) {
	if c.cfg.Observe != nil {
		c.cfg.Observe(e)
	}
}
