package cli

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

// liveView shows the demo while it runs: orders produced and stored per
// partition, which member owns which partitions, and each rebalance as it
// happens. It learns all of it from the members' events (observe); on a
// terminal it redraws one block in place; otherwise (a pipe, a file, a test)
// it prints one plain line per tick and one per event.
type liveView struct {
	w      io.Writer
	tty    bool
	target int
	// partitions is how many the topic has: each is shown from the start,
	// owned or not, produced to or not.
	partitions int32
	// produced returns the orders acknowledged so far, by partition.
	produced func() map[int32]int64
	ids      []string // the members, in the order shown

	ticking   sync.Mutex // one tick at a time
	mu        sync.Mutex
	stopped   map[string]bool
	away      map[string]bool    // out of the group while its database is away
	owners    map[string][]int32 // what each member owns now
	stored    map[int32]int64    // orders newly stored, by partition
	processed map[string]int64   // orders newly stored, by member
	events    []string
	drawn     int // lines of the last block, to move back over them
}

// newLiveView draws on w, in place when tty (w is a terminal).
func newLiveView(w io.Writer, tty bool, target int, partitions int32, produced func() map[int32]int64, ids []string) *liveView {
	return &liveView{w: w, tty: tty, target: target, partitions: partitions, produced: produced, ids: ids,
		stopped: map[string]bool{}, away: map[string]bool{}, owners: map[string][]int32{}, stored: map[int32]int64{}, processed: map[string]int64{}}
}

// observe takes a member's event. Every member starts with no partitions,
// so its joining the group shows as its first rebalance.
func (v *liveView) observe(e consumer.Event) {
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

// stop marks a member as stopped, with the reason shown in the events.
func (v *liveView) stop(id, why string) {
	v.mu.Lock()
	v.stopped[id] = true
	v.mu.Unlock()
	v.event(time.Now(), fmt.Sprintf("%s leaves the group (%s)", id, why))
}

// event records something that happened; in plain mode it is printed at once.
func (v *liveView) event(at time.Time, e string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e = at.Format("15:04:05") + "  " + e
	v.events = append(v.events, e)
	if !v.tty {
		fmt.Fprintln(v.w, "event    "+e)
	}
}

// tick draws the current state.
func (v *liveView) tick() {
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
func (v *liveView) run(every time.Duration) func() {
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

func (v *liveView) snapshot() snapshot {
	s := snapshot{produced: v.produced(), stored: maps.Clone(v.stored), owner: map[int32]string{}, partitions: v.partitions}
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
func (v *liveView) noOwner() string {
	for _, id := range v.ids {
		if !v.stopped[id] && !v.away[id] {
			return "rebalancing"
		}
	}
	return "no member running"
}

func (v *liveView) plainLine() string {
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

func (v *liveView) ownsText(id string) string {
	if v.stopped[id] {
		return "stopped"
	}
	return fmt.Sprint(orNone(v.owners[id]))
}

// drawBlock redraws the block in place: back up over the last one, clear to
// the end of the screen, draw.
func (v *liveView) drawBlock() {
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
