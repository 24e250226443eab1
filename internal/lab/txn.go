package lab

// Transactions in the lab: the user opens a Kafka transaction of a few
// orders from a transactional producer the lab owns, watches the orders
// group stop at the last stable offset, and commits or aborts it.
//
// What the page shows of it comes from Kafka, never from what the lab meant
// to happen: two readers of the topic, one read_uncommitted that keeps the
// control records (the commit and abort markers a transaction's end writes
// in each partition it touched), one read_committed as the groups read; the
// last stable offset and the high watermark of each partition (inspect,
// kadm's ListCommittedOffsets against ListEndOffsets); and the orders table,
// for how many of a transaction's orders the orders group stored.

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"foodpipe/internal/config"
	"foodpipe/internal/kafka"
	"foodpipe/internal/order"
	"foodpipe/internal/producer"
	"foodpipe/internal/wire"
)

// The bounds of a transaction begun from the page, and how long the broker
// lets one stay open before it aborts it by itself: long enough to look at
// the lanes, short enough that a forgotten one does not hold the groups for
// long.
const (
	MaxTxnOrders = 50
	TxnTimeout   = 60 * time.Second
	txnShown     = 40 // transactional records and markers kept per lane
	txnKept      = 4  // ended transactions listed
	txnReadKept  = 20000
)

// TxnView is the transactions as the page shows them.
type TxnView struct {
	// Open is the transaction open now, nil when none.
	Open *TxnInfo `json:"open"`
	// Ended are the last ones ended, newest first.
	Ended []TxnInfo `json:"ended"`
	// Timeout is the transaction timeout, in seconds.
	Timeout float64 `json:"timeout"`
	// Lanes are what the two readers read of transactions, by partition.
	Lanes []TxnLane `json:"lanes"`
}

// TxnInfo is one transaction the lab began.
type TxnInfo struct {
	Seq        int       `json:"seq"`
	Orders     int       `json:"orders"`
	ProducerID int64     `json:"producer_id"`
	Opened     time.Time `json:"opened"`
	// Outcome is what the markers in the log say: "open" before any, then
	// "committed" or "aborted"; "ending" once the lab asked and before the
	// reader met its markers.
	Outcome string `json:"outcome"`
	// ByBroker: the broker aborted it, past its timeout.
	ByBroker bool `json:"by_broker,omitempty"`
	// Offsets says where its records are, by partition ("p0 40–43").
	Offsets string `json:"offsets"`
	// Stored is how many of its orders the orders table holds.
	Stored int `json:"stored"`
	// ReadPast: the orders group's committed offset is past every record of
	// it, in every partition it wrote to.
	ReadPast bool `json:"read_past"`
}

// TxnLane is one partition as the read_uncommitted reader reads its
// transactions: their records and markers, in offset order.
type TxnLane struct {
	Partition int32    `json:"partition"`
	Records   []TxnMsg `json:"records"`
}

// TxnMsg is one transactional record or marker.
type TxnMsg struct {
	Offset int64  `json:"offset"`
	Key    string `json:"key,omitempty"`
	// Txn is the lab's number for its transaction, 0 for another
	// producer's.
	Txn int `json:"txn"`
	// Kind is "record", or "commit" or "abort" for a marker.
	Kind string `json:"kind"`
	// State is a record's: "pending" until its producer's next marker in
	// the partition, then "committed" or "aborted".
	State string `json:"state,omitempty"`
	// ReadCommitted: the read_committed reader returned it.
	ReadCommitted bool `json:"read_committed"`
}

// labTxn is a transaction the lab began.
type labTxn struct {
	seq    int
	tx     *producer.Transaction
	opened time.Time
	asked  string // "", "commit" or "abort": what the lab asked for
	info   TxnInfo
	// eventsTold: what the timeline was already told of its end.
	toldEnd, toldReadPast bool
}

// txnState is what the lab keeps of transactions; Lab.mu guards it.
type txnState struct {
	seq   int
	open  *labTxn
	ended []*labTxn
	view  TxnView
}

// txnFacts count what the transaction lesson asks for.
type txnFacts struct {
	begun           int
	heldBack        int // samples that saw an open transaction hold a lane below its high watermark
	abortedUnstored int // aborted transactions the orders group read past, none of their orders stored
	committedStored int // committed transactions all of whose orders are stored
}

// txnSample is one reading of the transactions, taken outside the lock.
type txnSample struct {
	read    map[int32][]txnEntry
	dropped map[int32]int64
	stored  map[string]bool // of the listed transactions' order ids
}

// txnLab is the lab's transactional producer and its two readers.
type txnLab struct {
	mu  sync.Mutex // one begin or end at a time
	cl  *kgo.Client
	gen *order.Generator
	id  string

	uncommitted, committed *kgo.Client
	rmu                    sync.Mutex
	entries                map[int32][]txnEntry // read_uncommitted: transactional records and markers
	dropped                map[int32]int64      // of them, markers and aborted records let go of (see takeUncommitted)
	rc                     map[int32]map[int64]bool
	wg                     sync.WaitGroup
}

// txnEntry is one transactional record or marker as read.
type txnEntry struct {
	offset int64
	pid    int64
	key    string
	marker kmsg.ControlRecordKeyType
	isMark bool
}

// startTxn starts the two readers of the topic, from its end now: the
// transactions the lab will begin are after it.
func startTxn(ctx context.Context, cfg config.Config, log *slog.Logger) (*txnLab, error) {
	t := &txnLab{gen: order.NewGenerator(uint64(time.Now().UnixNano())^0x7a11, nil), id: "foodpipe-lab-" + cfg.Topic,
		entries: map[int32][]txnEntry{}, dropped: map[int32]int64{}, rc: map[int32]map[int64]bool{}}
	base := append(kafka.ClientOpts(wire.KafkaOptions(cfg, log)), kgo.ConsumeTopics(cfg.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	var err error
	if t.uncommitted, err = kgo.NewClient(append(base, kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords())...); err != nil {
		return nil, fmt.Errorf("read_uncommitted reader: %w", err)
	}
	if t.committed, err = kgo.NewClient(append(base, kgo.FetchIsolationLevel(kgo.ReadCommitted()))...); err != nil {
		t.uncommitted.Close()
		return nil, fmt.Errorf("read_committed reader: %w", err)
	}
	t.wg.Go(func() { t.read(ctx, t.uncommitted, t.takeUncommitted) })
	t.wg.Go(func() { t.read(ctx, t.committed, t.takeCommitted) })
	return t, nil
}

// read polls cl until ctx ends, handing each record to take.
func (t *txnLab) read(ctx context.Context, cl *kgo.Client, take func(*kgo.Record)) {
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		// Fetch errors (a broker restarting) are retried by the client.
		t.rmu.Lock()
		fs.EachRecord(take)
		t.rmu.Unlock()
	}
}

// takeUncommitted keeps a transactional record or a marker. Call with rmu held.
func (t *txnLab) takeUncommitted(r *kgo.Record) {
	if !r.Attrs.IsTransactional() && !r.Attrs.IsControl() {
		return // the lab's plain producer: not a transaction's
	}
	e := txnEntry{offset: r.Offset, pid: r.ProducerID, key: string(r.Key)}
	if r.Attrs.IsControl() {
		var k kmsg.ControlRecordKey
		if err := k.ReadFrom(r.Key); err != nil {
			return // a control record of a kind this lab does not know
		}
		e.isMark, e.marker, e.key = true, k.Type, ""
	}
	es := append(t.entries[r.Partition], e)
	if len(es) > txnReadKept {
		// The oldest half goes, long ended: what of it holds no order is
		// counted on, for txnSkipped.
		cut := len(es) / 2
		for _, m := range txnMessages(es)[:cut] {
			if m.Kind != "record" || m.State == "aborted" {
				t.dropped[r.Partition]++
			}
		}
		es = slices.Clone(es[cut:])
	}
	t.entries[r.Partition] = es
}

// takeCommitted notes a transactional record the read_committed reader was
// given. Call with rmu held.
func (t *txnLab) takeCommitted(r *kgo.Record) {
	if !r.Attrs.IsTransactional() {
		return
	}
	m := t.rc[r.Partition]
	if m == nil {
		m = map[int64]bool{}
		t.rc[r.Partition] = m
	}
	m[r.Offset] = true
	if len(m) > txnReadKept {
		for _, off := range slices.Sorted(maps.Keys(m))[:len(m)/2] {
			delete(m, off)
		}
	}
}

// close aborts a transaction still open, so that it holds no group after
// the lab, and stops the readers.
func (t *txnLab) close(open *labTxn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cl != nil {
		if open != nil && open.asked == "" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = open.tx.End(ctx, false) // the broker's timeout ends it otherwise
			cancel()
		}
		t.cl.Close()
	}
	t.uncommitted.Close()
	t.committed.Close()
	t.wg.Wait()
}

// BeginTxn begins a transaction of n orders and leaves it open: its
// records are in the log, and read_committed readers stop before them.
func (l *Lab) BeginTxn(n int) error {
	if n < 1 || n > MaxTxnOrders {
		return fmt.Errorf("%w: a transaction holds from 1 to %d orders", ErrBadRequest, MaxTxnOrders)
	}
	t := l.txn
	t.mu.Lock()
	defer t.mu.Unlock()
	l.mu.Lock()
	open := l.st.txn.open
	l.mu.Unlock()
	if open != nil {
		return fmt.Errorf("begin a transaction: %w: transaction %d, commit or abort it first", ErrTxnOpen, open.seq)
	}
	ctx, cancel := context.WithTimeout(l.ctx, 30*time.Second)
	defer cancel()
	if t.cl == nil {
		cl, err := l.pl.TransactionalClient(ctx, l.cfg, t.id, TxnTimeout)
		if err != nil {
			return fmt.Errorf("begin a transaction: %w", err)
		}
		t.cl = cl
	}
	tx, err := producer.Begin(ctx, t.cl, t.gen, l.cfg.Topic, n)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.st.txn
	s.seq++
	lt := &labTxn{seq: s.seq, tx: tx, opened: time.Now()}
	lt.info = TxnInfo{Seq: lt.seq, Orders: n, ProducerID: tx.ProducerID, Opened: lt.opened, Outcome: "open", Offsets: producer.OffsetsText(tx.Sent)}
	s.open = lt
	l.st.facts.txn.begun++
	l.st.event(lt.opened, "txn", fmt.Sprintf("transaction %d of %d orders opened (producer id %d), offsets %s: read_committed groups stop at its first offset in each partition until it ends",
		lt.seq, n, tx.ProducerID, lt.info.Offsets))
	return nil
}

// EndTxn commits or aborts the open transaction.
func (l *Lab) EndTxn(commit bool) error {
	what := map[bool]string{true: "commit", false: "abort"}[commit]
	t := l.txn
	t.mu.Lock()
	defer t.mu.Unlock()
	l.mu.Lock()
	lt := l.st.txn.open
	l.mu.Unlock()
	if lt == nil {
		return fmt.Errorf("%s: %w", what, ErrNoTxn)
	}
	ctx, cancel := context.WithTimeout(l.ctx, 30*time.Second)
	defer cancel()
	err := lt.tx.End(ctx, commit)
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.st.txn
	// Ended either way: a refused commit was aborted (see Transaction.End).
	lt.asked = what
	if err != nil {
		lt.asked = "abort"
	}
	s.open = nil
	s.ended = append([]*labTxn{lt}, s.ended...)
	if len(s.ended) > txnKept {
		s.ended = s.ended[:txnKept]
	}
	if err != nil {
		l.st.event(time.Now(), "txn", fmt.Sprintf("transaction %d: the %s failed, and it was aborted: %v", lt.seq, what, err))
		return err
	}
	if commit {
		// Its orders are produced now, for the invariants, as if sent at
		// once: read_committed groups will read them.
		for _, sent := range lt.tx.Sent {
			l.st.acked++
			l.st.sentOrder(sent.Order)
		}
		l.st.event(time.Now(), "txn", fmt.Sprintf("transaction %d committed: its %d orders are readable by read_committed groups now", lt.seq, len(lt.tx.Sent)))
	} else {
		l.st.event(time.Now(), "txn", fmt.Sprintf("transaction %d aborted: its %d records stay in the log and will never be read by read_committed groups", lt.seq, len(lt.tx.Sent)))
	}
	return nil
}

// sampleTxn reads what the readers hold and how many of the listed
// transactions' orders are stored. Call without l.mu.
func (l *Lab) sampleTxn(ctx context.Context) txnSample {
	s := txnSample{read: map[int32][]txnEntry{}, stored: map[string]bool{}}
	if t := l.txn; t != nil {
		t.rmu.Lock()
		for p, es := range t.entries {
			s.read[p] = slices.Clone(es)
		}
		s.dropped = maps.Clone(t.dropped)
		t.rmu.Unlock()
	}
	l.mu.Lock()
	var ids []string
	for _, lt := range l.txnsListed() {
		for _, sent := range lt.tx.Sent {
			ids = append(ids, sent.Order.OrderID)
		}
	}
	l.mu.Unlock()
	if len(ids) > 0 {
		if got, err := l.pl.Store.Orders(ctx, ids); err == nil {
			for _, o := range got {
				s.stored[o.OrderID] = true
			}
		} else {
			s.stored = nil // unknown: the counts stay as they were
		}
	}
	return s
}

// txnsListed are the open transaction and the ended ones kept. Call with
// l.mu held.
func (l *Lab) txnsListed() []*labTxn {
	s := &l.st.txn
	if s.open != nil {
		return append([]*labTxn{s.open}, s.ended...)
	}
	return s.ended
}

// foldTxn takes a reading into the state: each transaction's outcome as
// its markers say, what the lanes hold, the lessons' facts, the timeline.
// lanes are the snapshot's, their last stable offsets read. Call with l.mu
// held.
func (l *Lab) foldTxn(at time.Time, s txnSample, lanes []Lane) {
	st := &l.st
	ts := &st.txn
	t := l.txn
	committedByOffset := map[int32]map[int64]bool{}
	if t != nil { // nil in a lab made by hand, without a broker, in tests
		t.rmu.Lock()
		for p, m := range t.rc {
			committedByOffset[p] = maps.Clone(m)
		}
		t.rmu.Unlock()
	}
	// Which of the lab's transactions each record belongs to.
	seqOf := map[[2]int64]int{}
	for _, lt := range l.txnsListed() {
		for _, sent := range lt.tx.Sent {
			seqOf[[2]int64{int64(sent.Partition), sent.Offset}] = lt.seq
		}
	}
	v := TxnView{Timeout: TxnTimeout.Seconds(), Lanes: []TxnLane{}, Ended: []TxnInfo{}}
	states := map[[2]int64]string{}
	for _, p := range slices.Sorted(maps.Keys(s.read)) {
		msgs := txnMessages(s.read[p])
		for i := range msgs {
			m := &msgs[i]
			m.Txn = seqOf[[2]int64{int64(p), m.Offset}]
			m.ReadCommitted = committedByOffset[p][m.Offset]
			if m.Kind == "record" {
				states[[2]int64{int64(p), m.Offset}] = m.State
			}
		}
		if len(msgs) > txnShown {
			msgs = msgs[len(msgs)-txnShown:]
		}
		v.Lanes = append(v.Lanes, TxnLane{Partition: p, Records: msgs})
	}
	committedAt := map[int32]int64{}
	for _, ln := range lanes {
		committedAt[ln.Partition] = ln.Committed
		if ts.open != nil && ln.LastStable < ln.HighWatermark {
			st.facts.txn.heldBack++
		}
	}
	for _, lt := range l.txnsListed() {
		l.foldOneTxn(at, lt, s, states, committedAt)
	}
	if ts.open != nil {
		info := ts.open.info
		v.Open = &info
	}
	for _, lt := range ts.ended {
		v.Ended = append(v.Ended, lt.info)
	}
	ts.view = v
}

// foldOneTxn brings one transaction's info up to date.
func (l *Lab) foldOneTxn(at time.Time, lt *labTxn, s txnSample, states map[[2]int64]string, committedAt map[int32]int64) {
	st := &l.st
	in := &lt.info
	if s.stored != nil {
		in.Stored = 0
		for _, sent := range lt.tx.Sent {
			if s.stored[sent.Order.OrderID] {
				in.Stored++
			}
		}
	}
	// The outcome is the markers': every record of it committed, or
	// aborted, as the read_uncommitted reader read them.
	outcome := ""
	for _, sent := range lt.tx.Sent {
		state := states[[2]int64{int64(sent.Partition), sent.Offset}]
		if state == "" || state == "pending" || outcome != "" && state != outcome {
			outcome = ""
			break
		}
		outcome = state
	}
	in.ReadPast = true
	for _, sent := range lt.tx.Sent {
		if committedAt[sent.Partition] <= sent.Offset {
			in.ReadPast = false
		}
	}
	switch {
	case outcome != "":
		in.Outcome = outcome
	case lt.asked != "":
		in.Outcome = "ending"
	default:
		in.Outcome = "open"
	}
	if outcome == "" || lt.toldEnd && lt.toldReadPast {
		return
	}
	if lt == st.txn.open && outcome == "aborted" {
		// Aborted without the lab asking: the broker's timeout.
		in.ByBroker, lt.asked, lt.toldEnd = true, "abort", true
		st.txn.open = nil
		st.txn.ended = append([]*labTxn{lt}, st.txn.ended...)
		if len(st.txn.ended) > txnKept {
			st.txn.ended = st.txn.ended[:txnKept]
		}
		st.event(at, "txn", fmt.Sprintf("the broker aborted transaction %d itself: it was open longer than its timeout (%v)", lt.seq, TxnTimeout))
	}
	if !lt.toldEnd {
		lt.toldEnd = true
		st.event(at, "txn", fmt.Sprintf("transaction %d: the %s markers are in the log, after its records in each partition it wrote to", lt.seq, map[string]string{"committed": "commit", "aborted": "abort"}[outcome]))
	}
	if !lt.toldReadPast && in.ReadPast {
		switch {
		case outcome == "aborted" && in.Stored == 0:
			lt.toldReadPast = true
			st.facts.txn.abortedUnstored++
			st.event(at, "txn", fmt.Sprintf("transaction %d: the orders group read past its %d aborted records and stored none of them", lt.seq, in.Orders))
		case outcome == "committed" && in.Stored == in.Orders:
			lt.toldReadPast = true
			st.facts.txn.committedStored++
			st.event(at, "txn", fmt.Sprintf("transaction %d: all %d of its orders are stored", lt.seq, in.Orders))
		}
	}
}

// txnMessages turns a partition's transactional records and markers, in
// offset order, into what the lane shows: each record pending until the
// next marker of its producer, then what that marker says.
func txnMessages(es []txnEntry) []TxnMsg {
	out := make([]TxnMsg, len(es))
	pending := map[int64][]int{} // producer id -> indexes of its records not yet ended
	for i, e := range es {
		if !e.isMark {
			out[i] = TxnMsg{Offset: e.offset, Key: e.key, Kind: "record", State: "pending"}
			pending[e.pid] = append(pending[e.pid], i)
			continue
		}
		kind, state := "abort", "aborted"
		if e.marker == kmsg.ControlRecordKeyTypeCommit {
			kind, state = "commit", "committed"
		}
		out[i] = TxnMsg{Offset: e.offset, Kind: kind}
		for _, j := range pending[e.pid] {
			out[j].State = state
		}
		delete(pending, e.pid)
	}
	return out
}

// txnSkipped counts the offsets below each partition's stored position
// (inspect's Stored: the consumers' next offset in PostgreSQL) that hold
// no order a group could store: records of aborted transactions, and the
// markers. The consumers' positions pass over them, so that the invariant
// counting what they handled leaves them out. Call with l.mu held.
func (l *Lab) txnSkipped(s *sample) int64 {
	if s.viewErr != nil {
		return 0
	}
	var n int64
	for _, p := range s.view.Partitions {
		if p.Stored < 0 {
			continue
		}
		n += s.txn.dropped[p.Partition]
		for _, m := range txnMessages(s.txn.read[p.Partition]) {
			if m.Offset < p.Stored && (m.Kind != "record" || m.State == "aborted") {
				n++
			}
		}
	}
	return n
}

// closeTxn ends what the lab left open and stops the readers.
func (l *Lab) closeTxn() {
	if l.txn == nil {
		return
	}
	l.mu.Lock()
	open := l.st.txn.open
	l.mu.Unlock()
	l.txn.close(open)
}

// txnActions registers the transaction's POSTs.
func (l *Lab) txnActions(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/txn/begin", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Orders int `json:"orders"`
		}
		if decode(w, r, &b) {
			reply(w, l.BeginTxn(b.Orders))
		}
	})
	for path, commit := range map[string]bool{"/api/txn/commit": true, "/api/txn/abort": false} {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			if decode(w, r, nil) {
				reply(w, l.EndTxn(commit))
			}
		})
	}
}
