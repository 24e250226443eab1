package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"foodpipe/internal/inspect"
	"foodpipe/internal/kafka"
	"foodpipe/internal/store"
)

// Status is one look at the pipeline: the topic, the group, the table.
type Status struct {
	Topic string `json:"topic"`
	// TopicID is Kafka's id of the topic: a topic deleted and created again
	// has a new one, and foodpipe stores offsets by name and id.
	TopicID    string `json:"topic_id,omitempty"`
	Group      string `json:"group"`
	GroupState string `json:"group_state"`
	// GroupProtocol is "classic" or "consumer" (KIP-848), absent when Kafka
	// knows no such group. GroupEpoch and AssignmentEpoch are a KIP-848
	// group's epoch and the epoch of the broker's target assignment.
	GroupProtocol   string            `json:"group_protocol,omitempty"`
	GroupEpoch      int32             `json:"group_epoch,omitempty"`
	AssignmentEpoch int32             `json:"assignment_epoch,omitempty"`
	Partitions      []PartitionStatus `json:"partitions"`
	Members         []MemberStatus    `json:"members"`
	// TotalLag is the partitions' lag summed: what the group has still to read.
	TotalLag int64  `json:"total_lag"`
	DLQTopic string `json:"dlq_topic"`
	DLQSize  int64  `json:"dlq_size"`
	// Database is "" when the rows could be counted, else why not.
	Database string `json:"database_error,omitempty"`
	// OtherGroups are the other foodpipe groups on the topic (the
	// analytics group): each reads at its own pace, with its own offsets.
	OtherGroups []GroupStatus `json:"other_groups"`
	// EarlierTopics are earlier incarnations of the topic (name@id) that the
	// database holds the group's offsets of: the topic was deleted and
	// created again. A member reads a partition the group has no offset of
	// in this incarnation from its log start.
	EarlierTopics []string `json:"earlier_topics,omitempty"`
}

// GroupStatus is a group in brief.
type GroupStatus struct {
	Group    string `json:"group"`
	State    string `json:"state"`
	Members  int    `json:"members"`
	TotalLag int64  `json:"total_lag"`
}

// PartitionStatus is one partition of the orders topic.
type PartitionStatus struct {
	Partition int32 `json:"partition"`
	// LogStart is the oldest offset Kafka keeps.
	LogStart      int64 `json:"log_start"`
	HighWatermark int64 `json:"high_watermark"`
	// LastStable is the last stable offset: where a transaction still open
	// begins, else the high watermark. The group reads up to it.
	LastStable int64 `json:"last_stable_offset"`
	// Committed is the group's committed offset, -1 when it has none.
	Committed int64 `json:"committed"`
	// Stored is the next offset stored in PostgreSQL with the group's
	// orders, -1 when none (or the database could not be read). A member
	// resumes from it when it is ahead of Committed.
	Stored int64 `json:"stored"`
	// Lag is what the group has still to read: from its position (the
	// greater of Stored and Committed, or the log start) to the last
	// stable offset.
	Lag int64 `json:"lag"`
	// Expired are the offsets Kafka deleted before the group read them:
	// recorded by a member, or (Recorded false) lying between the group's
	// position and the log start now, to be met by the next member.
	Expired []ExpiredStatus `json:"expired"`
	// Rows is the orders stored from this partition, -1 when unknown.
	Rows  int64  `json:"rows"`
	Owner string `json:"owner"`
	// LastCommitter is the member that committed the partition's offset
	// last, from the commit's metadata; during a rebalance, when the
	// coordinator reports no owners, it is the last known owner.
	LastCommitter string `json:"last_committer,omitempty"`
}

// ExpiredStatus is a stretch of a partition, From to To inclusive, that
// Kafka deleted before the group read it.
type ExpiredStatus struct {
	From     int64 `json:"from"`
	To       int64 `json:"to"`
	Recorded bool  `json:"recorded"`
}

// MemberStatus is one member of the consumer group.
type MemberStatus struct {
	ClientID   string  `json:"client_id"`
	Host       string  `json:"host"`
	MemberID   string  `json:"member_id"`
	InstanceID string  `json:"instance_id,omitempty"`
	Partitions []int32 `json:"partitions"`
	// Epoch and Target are a KIP-848 member's: the group epoch it has
	// caught up with (-2: a static member away, its partitions kept), and
	// the partitions the broker means it to own.
	Epoch  int32   `json:"epoch,omitempty"`
	Target []int32 `json:"target,omitempty"`
}

// StatusOf is the status of g, with the size of its dead-letter topic
// dlqTopic and the other groups reading the topic. dbErr is why the database
// could not be read, nil when it was: said in place of the rows.
func StatusOf(g inspect.Group, dlqTopic string, dlqSize int64, others []inspect.Group, dbErr error) Status {
	s := Status{Topic: g.Topic, TopicID: g.TopicID, Group: g.Group, GroupState: g.State, DLQTopic: dlqTopic, DLQSize: dlqSize,
		EarlierTopics: g.Earlier, GroupProtocol: g.Protocol, GroupEpoch: g.Epoch, AssignmentEpoch: g.AssignmentEpoch}
	for _, m := range g.Members {
		s.Members = append(s.Members, MemberStatus{ClientID: m.ClientID, Host: m.Host, MemberID: m.MemberID, InstanceID: m.InstanceID,
			Partitions: m.Partitions, Epoch: m.Epoch, Target: m.Target})
	}
	switch {
	case store.IsNotMigrated(dbErr):
		s.Database = "the database has no orders table yet: run `foodpipe migrate up` (a consumer does it when it starts)"
	case dbErr != nil:
		s.Database = dbErr.Error()
	}
	s.OtherGroups = []GroupStatus{}
	for _, o := range others {
		s.OtherGroups = append(s.OtherGroups, GroupStatus{Group: o.Group, State: o.State, Members: len(o.Members), TotalLag: o.Lag()})
	}
	for _, p := range g.Partitions {
		ps := PartitionStatus{Partition: p.Partition, LogStart: p.LogStart, HighWatermark: p.HighWatermark, LastStable: p.LastStable,
			Committed: p.Committed, Stored: p.Stored, Lag: p.Lag, Expired: []ExpiredStatus{}, Rows: p.Rows, Owner: p.Owner,
			LastCommitter: p.CommittedBy}
		for _, e := range p.Expired {
			ps.Expired = append(ps.Expired, ExpiredStatus(e))
		}
		s.Partitions = append(s.Partitions, ps)
	}
	s.TotalLag = g.Lag()
	return s
}

// rebalancing reports whether the group is between assignments. The
// coordinator then describes every member with no partitions, although with
// the cooperative protocol they go on reading those they keep.
func (s Status) rebalancing() bool {
	return s.GroupState == "PreparingRebalance" || s.GroupState == "CompletingRebalance"
}

// kip848 reports whether the group runs KIP-848's protocol.
func (s Status) kip848() bool { return s.GroupProtocol == kafka.ProtocolConsumer }

// protocol names the group's protocol for the status line, "" when unknown.
func (s Status) protocol() string {
	switch s.GroupProtocol {
	case kafka.ProtocolConsumer:
		return fmt.Sprintf("    protocol consumer (KIP-848), epoch %d", s.GroupEpoch)
	case "":
		return ""
	}
	return "    protocol " + safe(s.GroupProtocol)
}

// stateNote explains a group state a newcomer would misread, "" for Stable.
func (s Status) stateNote() string {
	switch {
	case s.rebalancing():
		return "the group is rebalancing: the coordinator reports no owners until the members have rejoined, so OWNER shows\n" +
			"the member that committed each partition last, marked (rebalancing). With the cooperative protocol a member\n" +
			"keeps reading the partitions it keeps; only those that move pause."
	case s.kip848() && (s.GroupState == "Assigning" || s.GroupState == "Reconciling"):
		return s.GroupState + ": the broker has a new target assignment (epoch " + fmt.Sprint(s.AssignmentEpoch) + ") and the members are taking it up, one\n" +
			"heartbeat at a time: a partition moves once its member has released it (PARTITIONS against TARGET below).\n" +
			"Under KIP-848 nothing else stops: the partitions that do not move are read on."
	case s.GroupState == "Dead":
		return "Dead is Kafka's name for a group it has no record of: no member has joined and no offset is committed yet."
	case s.GroupState == "Empty":
		return "Empty: no member is running; the committed offsets are kept, and the next member starts from them."
	}
	return ""
}

// PrintStatus writes `foodpipe status`: the topic and the group, a line per
// partition with its offsets, lag, rows and owner, what a newcomer would
// misread (the group's state, an open transaction, offsets that expired, an
// earlier topic of the name), the members and the other groups.
func PrintStatus(w io.Writer, s Status) {
	state := s.GroupState
	if state == "" {
		state = "unknown"
	}
	if len(s.Members) == 0 {
		// Kafka calls a group nobody has joined "Dead", one whose members
		// all left "Empty"; either way its offsets wait for the next member.
		state += " (no consumer running)"
	}
	fmt.Fprintf(w, "topic %s: %s    group %s: %s, %s%s    dead letters in %s: %d\n",
		safe(s.Topic), count(len(s.Partitions), "partition"), safe(s.Group), safe(state), count(len(s.Members), "member"), s.protocol(),
		safe(s.DLQTopic), s.DLQSize)
	if note := s.stateNote(); note != "" {
		fmt.Fprintln(w, note)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tHIGH WATERMARK\tCOMMITTED\tLAG\tROWS IN DB\tOWNER")
	for _, p := range s.Partitions {
		owner := safe(cmp.Or(p.Owner, "-"))
		if p.Owner == "" && s.rebalancing() && p.LastCommitter != "" {
			owner = safe(p.LastCommitter) + " (rebalancing)"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%s\t%s\n", p.Partition, p.HighWatermark, orDash(p.Committed), p.Lag, orDash(p.Rows), owner)
	}
	tw.Flush()
	fmt.Fprintf(w, "total lag %d (messages the group has still to read, up to the last stable offset)\n", s.TotalLag)
	for _, p := range s.Partitions {
		if p.LastStable < p.HighWatermark {
			fmt.Fprintf(w, "partition %d: a transaction is open from offset %d (high watermark %d): the group reads past it once the transaction ends\n",
				p.Partition, p.LastStable, p.HighWatermark)
		}
		for _, e := range p.Expired {
			when := "the next member meets them"
			if e.Recorded {
				when = "recorded by a member"
			}
			fmt.Fprintf(w, "partition %d: offsets %d-%d (%s) EXPIRED before group %s read them: Kafka deleted them (the retention passed, or records were deleted) and they are neither stored nor dead-lettered (%s)\n",
				p.Partition, e.From, e.To, count(e.To-e.From+1, "message"), safe(s.Group), when)
		}
	}
	if len(s.EarlierTopics) > 0 {
		fmt.Fprintf(w, "the database also holds group %s's offsets of %s, another topic of this name (deleted and created again, or on another cluster; this one's id is %s): members read a partition this topic has no stored offset of from its log start, and ROWS IN DB counts the orders of both\n",
			safe(s.Group), safe(strings.Join(s.EarlierTopics, ", ")), safe(cmp.Or(s.TopicID, "unknown")))
	}
	if len(s.Members) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if s.kip848() {
			// KIP-848: what each member owns now against what the broker
			// means it to own; its epoch says how far it has caught up.
			fmt.Fprintln(tw, "MEMBER\tHOST\tEPOCH\tPARTITIONS\tTARGET")
			away := false
			for _, m := range s.Members {
				epoch := fmt.Sprint(m.Epoch)
				if m.Epoch == -2 {
					epoch, away = "-2 (away)", true
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\n", safe(m.ClientID), safe(m.Host), epoch, m.Partitions, m.Target)
			}
			tw.Flush()
			if away {
				fmt.Fprintln(w, "epoch -2: a static member that left for a while; the broker keeps its partitions for it until its session ends")
			}
		} else {
			fmt.Fprintln(tw, "MEMBER\tHOST\tPARTITIONS")
			for _, m := range s.Members {
				parts := fmt.Sprint(m.Partitions)
				if len(m.Partitions) == 0 && s.rebalancing() {
					parts = "(rebalancing: not reported until it completes)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", safe(m.ClientID), safe(m.Host), parts)
			}
		}
		tw.Flush()
	}
	for _, g := range s.OtherGroups {
		fmt.Fprintf(w, "\nalso reading %s: group %s, %s, %s, total lag %d (foodpipe status --group %s shows it)\n",
			safe(s.Topic), safe(g.Group), safe(cmp.Or(g.State, "unknown")), count(g.Members, "member"), g.TotalLag, safe(g.Group))
	}
	if s.Database != "" {
		fmt.Fprintf(w, "\nrows in PostgreSQL unknown: %s\n", safe(s.Database))
	}
}

// StatusWatch is `foodpipe status --watch`'s view: a look at the status
// every interval, redrawn in place on a terminal, else one snapshot after
// another. A look that fails is said in words, and the view goes on: a broker
// it cannot reach (since when), no answer in time, or why else.
type StatusWatch struct {
	W io.Writer
	// Terminal: W is a terminal, where the view is redrawn in place.
	Terminal bool
	// Every is how often it looks; Within how long a look may take.
	Every, Within time.Duration
	// Brokers are where it looks for Kafka.
	Brokers []string

	down time.Time // since when no broker answers; zero while one does
}

// Begin starts a look at now: the screen cleared on a terminal, then when
// and how often.
func (v *StatusWatch) Begin(now time.Time) {
	if v.Terminal {
		// Home the cursor and clear the screen: the view is redrawn in place.
		fmt.Fprint(v.W, "\033[H\033[2J")
	}
	fmt.Fprintf(v.W, "%s  (every %s; Ctrl-C to stop)\n", now.Format("15:04:05"), v.Every)
}

// End ends the look begun last, at now: err is nil when it drew the status,
// else why it could not.
func (v *StatusWatch) End(err error, now time.Time) {
	switch {
	case err == nil:
		v.down = time.Time{}
	case kafka.Unreachable(err):
		if v.down.IsZero() {
			v.down = now
		}
		// The connection's own error says why ("connection refused");
		// the wrapping around it repeats what this line says.
		why := err.Error()
		if op, ok := errors.AsType[*net.OpError](err); ok {
			why = op.Error()
		}
		fmt.Fprintf(v.W, "Kafka broker unreachable at %s since %s, retrying every %s: %s\n",
			safe(strings.Join(v.Brokers, ",")), v.down.Format("15:04:05"), v.Every, safe(why))
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(v.W, "no status within %s (a Kafka broker or PostgreSQL does not answer), retrying every %s\n",
			v.Within, v.Every)
	default:
		fmt.Fprintf(v.W, "status unavailable: %s\n", safe(err.Error()))
	}
	if !v.Terminal {
		fmt.Fprintln(v.W)
	}
}
