package lab

// Who owns which partition, in the members' own words.
//
// Each consumer child serves foodpipe_partition_owned_since_seconds on its
// /metrics, one series per partition it owns, set in its own assigned
// callback and removed in its revoked and lost ones. The lab reads it with
// the rest of the child's metrics, once a tick: no request of its own, no
// log line, nothing of the child but what an operator's Prometheus reads
// too. An event stream from each child would be exact to the instant, but
// needs an endpoint of its own; a scrape is exact to the tick, and a change
// that is undone between two ticks (revoked, then given back) moved nothing
// the learner needs to see.
//
// The group coordinator's description (DescribeGroups) is not used for
// this: while the group is PreparingRebalance or CompletingRebalance it
// reports no assignment at all, though under the cooperative protocol every
// member goes on reading what it keeps. Read from it, every rebalance would
// look as if every member gave up everything and took it back.

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"foodpipe/internal/kafka"
)

// ownedMetric is the gauge each member serves for each partition it owns.
const ownedMetric = "foodpipe_partition_owned_since_seconds"

// claims are the partitions a member says it owns, each with the time it
// was given it (by its own clock: the lab's, on one machine).
type claims map[int32]time.Time

// A lane's owner state (Lane.OwnerState).
const (
	ownerNone   = "none"   // no member has owned it yet
	ownerOwns   = "owns"   // its owner says it owns it
	ownerMoving = "moving" // its owner gave it up; no member says it took it yet
	ownerLeft   = "left"   // its owner stopped and left the group; no member says it took it yet
	ownerDead   = "dead"   // its owner was killed: the group waits for its session to time out
	ownerFrozen = "frozen" // its owner is paused: it sends no heartbeat, its session will time out
)

// ownedOf reads a member's claims from its metrics.
func ownedOf(fams map[string]*dto.MetricFamily) claims {
	c := claims{}
	for _, m := range fams[ownedMetric].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() != "partition" {
				continue
			}
			p, err := strconv.ParseInt(lp.GetValue(), 10, 32)
			if err != nil {
				continue // not a partition number: not one of ours
			}
			c[int32(p)] = time.UnixMicro(int64(math.Round(m.GetGauge().GetValue() * 1e6)))
		}
	}
	return c
}

// foldOwners takes what each member said it owns and tells each change as
// a rebalance: who gave up what (and what it keeps), who took what from
// whom. A partition keeps its last owner until another member says it took
// it, through the coordinator's rounds and a dead member's session timeout.
// Call with l.mu held.
func (l *Lab) foldOwners(s *sample) {
	st := &l.st
	if s.viewErr == nil {
		st.partitions = st.partitions[:0]
		for _, p := range s.view.Partitions {
			st.partitions = append(st.partitions, p.Partition)
		}
	}

	// What each member that answered gave up since it last answered, and
	// what it kept. A partition it says it owns since a later time was
	// given up and given back between two readings: given up too, when
	// another member owned it meanwhile (a zombie that lost its partitions
	// and joined again at once).
	gave := map[string][]int32{}
	kept := map[string][]int32{}
	heardLost := map[string]bool{} // a zombie, whose partitions another took while it slept
	for id, c := range s.children {
		m := st.members[id]
		if m == nil || m.Status == "exited" || !c.answering {
			continue
		}
		for p, was := range st.claims[id] {
			now, still := c.owned[p]
			switch {
			case !still || !now.Equal(was) && st.owners[p] != id:
				gave[id] = append(gave[id], p)
			default:
				kept[id] = append(kept[id], p)
			}
		}
		st.claims[id] = c.owned
		heardLost[id] = len(gave[id]) > 0 && m.wasPaused && allOwnedBy(st, gave[id], id)
	}

	// Each partition's owner: of the members that say they own it, the one
	// given it last. A zombie woken from a pause says so too until it hears
	// it lost it; the member given it after is the owner.
	took := map[string][]int32{}
	from := map[int32]string{}
	for _, p := range st.partitions {
		best, since := "", time.Time{}
		for id, c := range st.claims {
			t, ok := c[p]
			if ok && (best == "" || t.After(since) || t.Equal(since) && id < best) {
				best, since = id, t
			}
		}
		prev := st.owners[p]
		if best == "" || best == prev {
			continue
		}
		st.owners[p] = best
		took[best] = append(took[best], p)
		if prev == "" {
			continue
		}
		from[p] = prev
		if pm := st.members[prev]; pm != nil {
			switch {
			case pm.killed:
				st.facts.killedMoved++
			case pm.stopped:
				st.facts.stoppedMoved++
			case pm.wasPaused:
				st.facts.pausedMoved++
			}
			if (pm.killed || pm.stopped) && st.snap.GroupProtocol == kafka.ProtocolConsumer {
				st.facts.kip848Moved++
			}
		}
	}
	l.foldIdle()
	if len(gave)+len(took) == 0 {
		return
	}

	var parts []string
	for _, id := range slices.Sorted(maps.Keys(gave)) {
		ps := slices.Sorted(slices.Values(gave[id]))
		keeps := "keeps nothing"
		if k := kept[id]; len(k) > 0 {
			keeps = fmt.Sprintf("keeps %v", slices.Sorted(slices.Values(k)))
		}
		if heardLost[id] {
			parts = append(parts, fmt.Sprintf("%s heard it lost %v while paused, %s", id, ps, keeps))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s gave up %v, %s", id, ps, keeps))
	}
	for _, id := range slices.Sorted(maps.Keys(took)) {
		ps := slices.Sorted(slices.Values(took[id]))
		byPrev := map[string][]int32{}
		for _, p := range ps {
			byPrev[from[p]] = append(byPrev[from[p]], p)
		}
		var what []string
		for _, prev := range slices.Sorted(maps.Keys(byPrev)) {
			w := fmt.Sprint(byPrev[prev])
			if prev != "" {
				w += " from " + prev
			}
			what = append(what, w)
		}
		parts = append(parts, fmt.Sprintf("%s took %s", id, strings.Join(what, " and ")))
	}
	if len(took) > 0 {
		st.facts.rebalances++
		f := &st.facts
		if f.added+f.stopped+f.killed+f.paused > 0 {
			f.causedRebalances++
		}
	}
	text := strings.Join(parts, "; ")
	if s.viewErr == nil && s.view.State != "" {
		text += " (group " + s.view.State + ")"
	}
	st.event(s.at, "rebalance", text)
}

// allOwnedBy reports whether every partition in ps has an owner other than id.
func allOwnedBy(st *state, ps []int32, id string) bool {
	for _, p := range ps {
		if o := st.owners[p]; o == "" || o == id {
			return false
		}
	}
	return true
}

// foldIdle notes a hot spare: more running members than partitions, every
// partition owned by a member that says so, and one member owning nothing.
// Call with l.mu held.
func (l *Lab) foldIdle() {
	st := &l.st
	running, spare := 0, false
	for id, m := range st.members {
		if m.Status != "running" || !m.Answering {
			continue
		}
		running++
		spare = spare || len(st.claims[id]) == 0
	}
	if running <= len(st.partitions) || !spare {
		return
	}
	for _, p := range st.partitions {
		if _, ok := st.claims[st.owners[p]][p]; !ok {
			return
		}
	}
	st.facts.idleMember++
}

// laneOwner is a partition's last known owner and what it is doing, with
// the seconds left before the group gives up on a dead or frozen one.
// Call with l.mu held.
func (l *Lab) laneOwner(p int32, now time.Time) (id, state string, left float64) {
	st := &l.st
	id = st.owners[p]
	m := st.members[id]
	untilSession := func(from time.Time) float64 { return max(from.Add(st.session).Sub(now).Seconds(), 0) }
	switch {
	case id == "":
		return "", ownerNone, 0
	case m == nil:
		return id, ownerMoving, 0
	case m.Status == "exited" && m.killed:
		return id, ownerDead, untilSession(m.killedAt)
	case m.Status == "exited":
		return id, ownerLeft, 0
	case m.Status == "paused":
		return id, ownerFrozen, untilSession(m.pausedAt)
	}
	if _, ok := st.claims[id][p]; ok {
		return id, ownerOwns, 0
	}
	return id, ownerMoving, 0
}

// owned is what a member says it owns, in order; [] not null when nothing,
// for the page to iterate.
func (st *state) owned(id string) []int32 {
	return append([]int32{}, slices.Sorted(maps.Keys(st.claims[id]))...)
}
