package demo

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"foodpipe/internal/consumer"
	"foodpipe/internal/telemetry"
)

// View draws a demo while it runs, from its events alone (Observe): the
// broker and the database once they are up, then the orders produced and
// stored per partition, which member owns which partitions, and each
// rebalance as it happens, until the orders are counted. On a terminal it
// redraws one block in place; otherwise (a pipe, a file, a test) it prints
// one plain line per tick and one per event.
type View struct {
	w      io.Writer
	tty    bool
	target int
	every  time.Duration // how often it draws once the demo has started

	// partitions is how many the topic has: each is shown from the start,
	// owned or not, produced to or not. They and the members are known on
	// Started.
	partitions int32
	ids        []string // the members, in the order shown

	ticking   sync.Mutex // one tick at a time
	mu        sync.Mutex
	produced  map[int32]int64 // orders acknowledged, by partition
	stopped   map[string]bool
	away      map[string]bool    // out of the group while its database is away
	owners    map[string][]int32 // what each member owns now
	stored    map[int32]int64    // orders newly stored, by partition
	processed map[string]int64   // orders newly stored, by member
	events    []string
	drawn     int // lines of the last block, to move back over them

	stopMu sync.Mutex
	stop   func() // stops the ticks and draws once more; set on Started
}

// NewView draws a demo of orders orders on w, in place when tty (w is a
// terminal: four times a second) and a plain line a second otherwise.
func NewView(w io.Writer, tty bool, orders int) *View {
	every := time.Second
	if tty {
		every = 250 * time.Millisecond
	}
	return &View{w: w, tty: tty, target: orders, every: every, produced: map[int32]int64{},
		stopped: map[string]bool{}, away: map[string]bool{}, owners: map[string][]int32{}, stored: map[int32]int64{}, processed: map[string]int64{}}
}

// Observe takes the demo's events: it is Options.Observe. Drawing starts
// on Started and ends, drawn one last time, on Counted or Close.
func (v *View) Observe(e Event) {
	switch e := e.(type) {
	case Started:
		fmt.Fprintf(v.w, "broker    %s (embedded, topic %s with %s)\n", e.Broker, e.Topic, count(e.Partitions, "partition"))
		fmt.Fprintf(v.w, "database  %s (%s)\n", e.Database, e.Source)
		v.mu.Lock()
		v.partitions, v.ids = e.Partitions, e.Members
		v.mu.Unlock()
		v.stopMu.Lock()
		v.stop = v.run(v.every)
		v.stopMu.Unlock()
	case Member:
		if !e.Analytics && !e.Notify {
			v.observe(e.Event)
		} else if a, ok := e.Event.(consumer.Assigned); ok {
			// Its rebalances are its group's own: the view tells them apart
			// from the orders group's, whose owners and counts it draws.
			v.event(a.At, fmt.Sprintf("group %s: %s now owns %v (the orders group is not affected)", e.Group, a.Member, orNone(a.Owned)))
		}
	case Acked:
		v.mu.Lock()
		v.produced[e.Partition]++
		v.mu.Unlock()
	case Stopping:
		v.stopMember(e.Member, fmt.Sprintf("--stop-one-after %d", e.After))
	case Counted:
		v.Close()
	}
}

// Close stops drawing, after drawing one last time if the demo started.
func (v *View) Close() {
	v.stopMu.Lock()
	stop := v.stop
	v.stopMu.Unlock()
	if stop != nil {
		stop()
	}
}

// observe takes a member's event. Every member starts with no partitions,
// so its joining the group shows as its first rebalance.
func (v *View) observe(e consumer.Event) {
	switch e := e.(type) {
	case consumer.Assigned:
		v.mu.Lock()
		was := v.owners[e.Member]
		v.owners[e.Member] = e.Owned
		v.mu.Unlock()
		if !slices.Equal(was, e.Owned) {
			v.event(e.At, fmt.Sprintf("rebalance: %s owned %v, now owns %v", e.Member, orNone(was), orNone(e.Owned)))
		}
	case consumer.BatchStored:
		v.mu.Lock()
		v.stored[e.Partition] += int64(e.Inserted)
		v.processed[e.Member] += int64(e.Inserted)
		v.mu.Unlock()
	case consumer.BreakerChanged:
		v.event(e.At, fmt.Sprintf("%s: database circuit breaker %s", e.Member, e.To))
	case consumer.Membership:
		v.mu.Lock()
		v.away[e.Member] = !e.InGroup
		v.mu.Unlock()
		v.event(e.At, fmt.Sprintf("%s in the group: %v (%s)", e.Member, e.InGroup, e.Why))
	}
}

// stopMember marks a member as stopped, with the reason shown in the events.
func (v *View) stopMember(id, why string) {
	v.mu.Lock()
	v.stopped[id] = true
	v.mu.Unlock()
	v.event(time.Now(), fmt.Sprintf("%s leaves the group (%s)", id, why))
}

// event records something that happened; in plain mode it is printed at once.
func (v *View) event(at time.Time, e string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e = at.Format("15:04:05") + "  " + e
	v.events = append(v.events, e)
	if !v.tty {
		fmt.Fprintln(v.w, "event    "+e)
	}
}

// tick draws the current state.
func (v *View) tick() {
	v.ticking.Lock()
	defer v.ticking.Unlock()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tty {
		v.drawBlock()
	} else {
		fmt.Fprintln(v.w, v.plainLine())
	}
}

// run ticks every interval until the returned func is called, which draws
// one last time.
func (v *View) run(every time.Duration) func() {
	stop := telemetry.Every(every, v.tick)
	var once sync.Once
	return func() { once.Do(func() { stop(); v.tick() }) }
}

// snapshot is what one drawing shows.
type snapshot struct {
	produced, stored       map[int32]int64
	totalProd, totalStored int64
	owner                  map[int32]string
	partitions             int32
}

func (v *View) snapshot() snapshot {
	s := snapshot{produced: maps.Clone(v.produced), stored: maps.Clone(v.stored), owner: map[int32]string{}, partitions: v.partitions}
	for _, id := range v.ids {
		for _, p := range v.owners[id] {
			s.owner[p] = id
		}
	}
	for _, n := range s.produced {
		s.totalProd += n
	}
	for _, n := range s.stored {
		s.totalStored += n
	}
	return s
}

// shown are the partitions to draw: every one of the topic's, and any other
// a member owns or an order went to (none, unless the topic grew).
func (s snapshot) shown() []int32 {
	ps := make([]int32, 0, s.partitions)
	for p := range s.partitions {
		ps = append(ps, p)
	}
	for p := range s.produced {
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	for p := range s.owner {
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	return ps
}

// unowned are the partitions shown that no member owns.
func (s snapshot) unowned() []int32 {
	var ps []int32
	for _, p := range s.shown() {
		if s.owner[p] == "" {
			ps = append(ps, p)
		}
	}
	return ps
}

// noOwner says why a partition has no owner: while a member runs, the
// group is between assignments (the first one, or a member left and its
// partitions are on their way to the others); with none, nobody will take it.
func (v *View) noOwner() string {
	for _, id := range v.ids {
		if !v.stopped[id] && !v.away[id] {
			return "rebalancing"
		}
	}
	return "no member running"
}

func (v *View) plainLine() string {
	s := v.snapshot()
	var b strings.Builder
	fmt.Fprintf(&b, "progress produced %d/%d  stored %d  |", s.totalProd, v.target, s.totalStored)
	for _, p := range s.shown() {
		fmt.Fprintf(&b, "  p%d %d/%d", p, s.stored[p], s.produced[p])
	}
	b.WriteString("  |")
	for _, id := range v.ids {
		fmt.Fprintf(&b, "  %s %s: %d", id, v.ownsText(id), v.processed[id])
	}
	if ps := s.unowned(); len(ps) > 0 {
		fmt.Fprintf(&b, "  |  no owner (%s): %v", v.noOwner(), ps)
	}
	return b.String()
}

func (v *View) ownsText(id string) string {
	if v.stopped[id] {
		return "stopped"
	}
	return fmt.Sprint(orNone(v.owners[id]))
}

// drawBlock redraws the block in place: back up over the last one, clear to
// the end of the screen, draw.
func (v *View) drawBlock() {
	s := v.snapshot()
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\033[%dA\033[J", v.drawn)
	}
	lines := []string{fmt.Sprintf("orders     produced %d/%d   stored %d", s.totalProd, v.target, s.totalStored), ""}
	for _, p := range s.shown() {
		owner := s.owner[p]
		if owner == "" {
			owner = "(no owner: " + v.noOwner() + ")"
		}
		lines = append(lines, fmt.Sprintf("partition %d  %s  %5d/%-5d  %s", p, bar(s.stored[p], s.produced[p], 24), s.stored[p], s.produced[p], owner))
	}
	lines = append(lines, "")
	for _, id := range v.ids {
		lines = append(lines, fmt.Sprintf("%-12s %-14s stored %d", id, v.ownsText(id), v.processed[id]))
	}
	if len(v.events) > 0 {
		lines = append(lines, "")
		lines = append(lines, v.events[max(0, len(v.events)-6):]...)
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	v.drawn = len(lines)
	_, _ = io.WriteString(v.w, b.String()) // a view that cannot be drawn is not worth stopping the demo for
}

// bar draws done out of total as a bar of width cells.
func bar(done, total int64, width int) string {
	n := 0
	if total > 0 {
		n = int(min(done, total) * int64(width) / total)
	}
	return strings.Repeat("█", n) + strings.Repeat("░", width-n)
}

func orNone(ps []int32) []int32 {
	if ps == nil {
		return []int32{}
	}
	return ps
}

// count is n with its noun, singular for one: "1 partition", "3 partitions".
func count[N ~int | ~int32 | ~int64](n N, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
