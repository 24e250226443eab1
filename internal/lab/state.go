package lab

// What the lab knows, and the snapshot of it that the page is sent.

import (
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/order"
	"foodpipe/internal/store"
)

// Limits on what the lab keeps, so that a lab left running stays small.
const (
	historyLen  = 300 // samples: five minutes at one a second
	timelineLen = 200
	recentLen   = 24 // messages shown in each partition's lane
	deadShown   = 100
)

// Snapshot is what the page is sent on every tick, as JSON.
type Snapshot struct {
	At         time.Time    `json:"at"`
	Topic      string       `json:"topic"`
	Group      string       `json:"group"`
	Producer   ProducerView `json:"producer"`
	Lanes      []Lane       `json:"lanes"`
	GroupState string       `json:"group_state"`
	// GroupProtocol is the protocol the group runs, "classic" or
	// "consumer" (KIP-848), "" before anyone joined; GroupEpoch is a
	// KIP-848 group's epoch.
	GroupProtocol string `json:"group_protocol"`
	GroupEpoch    int32  `json:"group_epoch"`
	// Generation of the group is not in DescribeGroups' answer (nor in
	// kadm's); the page counts the rebalances the lab saw instead.
	Rebalances int         `json:"rebalances"`
	Members    []Member    `json:"members"`
	Timeline   []Event     `json:"timeline"`
	History    History     `json:"history"`
	Dead       []Letter    `json:"dead"`
	DeadTotal  int         `json:"dead_total"`
	Invariants []Invariant `json:"invariants"`
	Lessons    []Lesson    `json:"lessons"`
	Faults     Faults      `json:"faults"`
	Reasons    []string    `json:"reasons"`
	// Analytics is the second group reading the same topic.
	Analytics AnalyticsView `json:"analytics"`
	// Semantics is the delivery-semantics panel (semantics.go).
	Semantics SemanticsView `json:"semantics"`
	// Txn is the transactions the user began, and what Kafka says of them (txn.go).
	Txn TxnView `json:"txn"`
	// Notify is the notifications panel (notify.go).
	Notify NotifyView `json:"notify"`
	// SessionTimeout is the consumers' session timeout, in seconds: how long
	// the group waits for a member that sends no heartbeat.
	SessionTimeout float64 `json:"session_timeout"`
	// Notice says, plainly, what a fault the user asked for is doing now
	// ("broker restarting as you asked; producer retrying").
	Notice string `json:"notice,omitempty"`
	// Error is why the last sample is incomplete, when no fault the user
	// asked for explains it; the details are in the lab's log.
	Error string `json:"error,omitempty"`
}

// ProducerView is the producer's setting and count.
type ProducerView struct {
	Rate   float64 `json:"rate"`
	Paused bool    `json:"paused"`
	Acked  int64   `json:"acked"`
}

// Lane is one partition: the read model's (inspect.Partition), with what
// the lab knows of it besides.
type Lane struct {
	Partition     int32 `json:"partition"`
	HighWatermark int64 `json:"high_watermark"`
	// LastStable is the last stable offset: below the high watermark while
	// a transaction is open, where read_committed readers wait.
	LastStable int64 `json:"last_stable"`
	Committed  int64 `json:"committed"`
	// Lag is Kafka's, from the committed offset (inspect's CommittedLag), as
	// the lessons teach it.
	Lag int64 `json:"lag"`
	// Rows is read before the high watermark, which only grows: it is never
	// above it, unless the table holds orders of an earlier topic.
	Rows int64 `json:"rows"`
	// Owner is the last member that said it owns the partition, kept until
	// another says it took it; OwnerState says what it is doing
	// (owns, moving, left, dead, frozen, none).
	Owner      string `json:"owner"`
	OwnerState string `json:"owner_state"`
	// SessionLeft is, for a dead or frozen owner, the seconds before its
	// session times out at the latest and the group hands the partition on.
	SessionLeft float64 `json:"session_left,omitempty"`
	Recent      []Msg   `json:"recent"`
}

// Msg is one message the lab sent, as its lane shows it.
type Msg struct {
	Offset int64  `json:"offset"`
	Key    string `json:"key"`
	Kind   string `json:"kind"` // order, invalid, duplicate, conflict, replay
}

// Member is one consumer process.
type Member struct {
	ID          string  `json:"id"`
	Pid         int     `json:"pid"`
	Status      string  `json:"status"` // running, paused, stopping, exited
	Exit        string  `json:"exit,omitempty"`
	Owns        []int32 `json:"owns"`
	BreakerOpen bool    `json:"breaker_open"`
	Ready       bool    `json:"ready"`
	// Answering: the child answered on its metrics address at the last
	// sample (a paused one does not).
	Answering bool `json:"answering"`
	// Fenced counts the batches the offset fence refused this member: its
	// late writes after it lost its partitions (foodpipe_fenced_batches_total).
	Fenced int64 `json:"fenced"`
	// KIP848 is the member as a KIP-848 group's broker describes it (its
	// static id is the member's id); nil under the classic protocol, or
	// when the broker lists no such member.
	KIP848 *MemberEpoch `json:"kip848,omitempty"`

	killed, stopped, wasPaused bool
	killedAt, pausedAt         time.Time
	proc                       *harness.Process
}

// MemberEpoch is a KIP-848 member's standing in its group: the group epoch
// it has caught up with (-2: a static member away, its partitions kept for
// it) and its target assignment, the partitions the broker means it to own.
type MemberEpoch struct {
	Epoch  int32   `json:"epoch"`
	Target []int32 `json:"target"`
}

// Event is one line of the timeline.
type Event struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"` // rebalance, process, producer, fault, broker, dlq
	Text string    `json:"text"`
}

// History is the charts' data, one column per series (as uPlot takes it).
type History struct {
	T        []float64  `json:"t"` // unix seconds, to the millisecond
	Produced []float64  `json:"produced"`
	Stored   []float64  `json:"stored"`
	P50      []*float64 `json:"p50"` // milliseconds; null with no order stored
	P99      []*float64 `json:"p99"`
	Lag      [][]int64  `json:"lag"` // by partition
}

// Faults says which faults are on, and which the lab can make.
type Faults struct {
	DBCut            bool    `json:"db_cut"`
	DBCutLeft        float64 `json:"db_cut_left"`
	CanCut           bool    `json:"can_cut"`
	BrokerRestarting bool    `json:"broker_restarting"`
	CanRestartBroker bool    `json:"can_restart_broker"`
}

// baseline is where the topic and the tables stood when the lab started.
type baseline struct {
	tally store.Tally
	hwm   int64
}

// facts count what the user made happen, for the lessons.
type facts struct {
	added, stopped, killed, paused, resumed, rebalances int
	causedRebalances                                    int // after the user acted on a consumer
	// Partitions another member took from a member the user killed,
	// stopped or paused.
	killedMoved, stoppedMoved, pausedMoved                 int
	invalid, duplicates, conflicts, deadSeen, replays      int
	dbCuts, breakerOpened, breakerClosed, brokerRestarts   int
	rateChanged, producerPaused, idleMember, fenced        int
	teachingStarted, semanticsRounds, semanticsShown       int
	notifyStarted, notifyEmails, notifyRounds, notifyShown int
	// Samples of a KIP-848 group with a member's epoch read, and
	// partitions of a killed or stopped member moved while the group
	// ran KIP-848.
	kip848Seen, kip848Moved int
	lastStored              int64
	txn                     txnFacts
}

// state is what the lab keeps between samples; Lab.mu guards it.
type state struct {
	topic, group     string
	childBroker      bool
	members          map[string]*Member
	order            []string
	nextID           int
	rate             float64
	paused           bool
	acked, dupsSent  int64
	sent             map[string]order.Order // acknowledged, not yet checked against the table
	recentSent       []order.Order          // the last few, to duplicate
	recent           map[int32][]Msg
	timeline         []Event
	partitions       []int32
	claims           map[string]claims // what each member said it owns, at its last answer
	owners           map[int32]string  // each partition's last owner, kept until another takes it
	session          time.Duration     // the consumers' session timeout
	brokerBack       time.Time         // when the broker came back from the last restart
	history          History
	base             baseline
	brokerRestarting bool
	cutUntil         time.Time
	facts            facts
	mismatched       []string
	verified         int64
	strikes          map[string]int
	prev             sample
	snap             Snapshot
	analytics        analyticsState
	sem              semanticsState
	txn              txnState
	notify           notifyState
}

func newState(cfg config.Config, childBroker bool) state {
	return state{topic: cfg.Topic, group: cfg.Group, childBroker: childBroker, members: map[string]*Member{},
		sent: map[string]order.Order{}, recent: map[int32][]Msg{}, owners: map[int32]string{}, strikes: map[string]int{},
		claims: map[string]claims{}, session: cfg.SessionTimeout,
		// Lists start empty, not null, for the page to iterate from the
		// first snapshot, even one taken while the broker is away.
		snap: Snapshot{Lanes: []Lane{}, Members: []Member{}, Reasons: []string{}}}
}

// event adds a line to the timeline.
func (s *state) event(at time.Time, kind, text string) {
	s.timeline = append(s.timeline, Event{At: at, Kind: kind, Text: text})
	if len(s.timeline) > timelineLen {
		s.timeline = s.timeline[len(s.timeline)-timelineLen:]
	}
}

// sentMsg records a message the broker acknowledged, for its lane.
func (s *state) sentMsg(partition int32, m Msg) {
	s.acked++
	r := append(s.recent[partition], m)
	if len(r) > recentLen {
		r = r[len(r)-recentLen:]
	}
	s.recent[partition] = r
}

// sentOrder records an order the broker acknowledged, to be checked
// against what is stored and offered for duplicating.
func (s *state) sentOrder(o order.Order) {
	s.sent[o.OrderID] = o
	s.recentSent = append(s.recentSent, o)
	if len(s.recentSent) > 50 {
		s.recentSent = s.recentSent[1:]
	}
}

func appendCapped[T any](xs []T, x T) []T {
	xs = append(xs, x)
	if len(xs) > historyLen {
		xs = xs[len(xs)-historyLen:]
	}
	return xs
}
