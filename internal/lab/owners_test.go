package lab

import (
	"slices"
	"strings"
	"testing"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/kafka"
)

// ownersLab is a lab's state alone, with running members, for folding
// what they say they own without a pipeline.
type ownersLab struct {
	*Lab
	t   *testing.T
	now time.Time
}

func newOwnersLab(t *testing.T, ids ...string) *ownersLab {
	l := &Lab{st: newState(config.Config{Topic: "t", Group: "g", SessionTimeout: 6 * time.Second}, true)}
	for i, id := range ids {
		l.st.members[id] = &Member{ID: id, Pid: i + 1, Status: "running"}
		l.st.order = append(l.st.order, id)
	}
	return &ownersLab{Lab: l, t: t, now: time.Unix(1_700_000_000, 0)}
}

// since is a time the test's members were given a partition: n ticks in.
func (o *ownersLab) since(n int) time.Time {
	return time.Unix(1_700_000_000, 0).Add(time.Duration(n) * time.Second)
}

// tick folds one sample in which each member of said answered, saying it
// owns those partitions, given at the times in it; the group is in state.
func (o *ownersLab) tick(state string, said map[string]claims) {
	o.t.Helper()
	o.now = o.now.Add(time.Second)
	s := &sample{at: o.now, view: topic(10, 10, 10), children: map[string]childSample{}}
	s.view.State = state
	for id, c := range said {
		s.children[id] = childSample{answering: true, ready: true, owned: c}
	}
	o.foldMembers(s)
	o.foldOwners(s)
}

// rebalances are the timeline's rebalance lines since mark.
func (o *ownersLab) rebalances(mark int) []string {
	var out []string
	for _, e := range o.st.timeline[mark:] {
		if e.Kind == "rebalance" {
			out = append(out, e.Text)
		}
	}
	return out
}

func (o *ownersLab) lane(p int32) (string, string, float64) { return o.laneOwner(p, o.now) }

// A cooperative rebalance reads as what it is: the member that gives up one
// partition is said to give up that one and keep the others, the lane keeps
// its owner while it moves, and the member that takes it is said to take
// that one, from whom.
func TestACooperativeRebalanceNamesOnlyThePartitionThatMoved(t *testing.T) {
	o := newOwnersLab(t, "consumer-1", "consumer-2")
	all := claims{0: o.since(0), 1: o.since(0), 2: o.since(0)}
	o.tick("Stable", map[string]claims{"consumer-1": all, "consumer-2": {}})
	if got := o.rebalances(0); len(got) != 1 || !strings.HasPrefix(got[0], "consumer-1 took [0 1 2]") {
		t.Fatalf("the first assignment reads %q", got)
	}
	mark := len(o.st.timeline)
	// The coordinator says nothing of owners in these rounds; the members do.
	o.tick("PreparingRebalance", map[string]claims{"consumer-1": {0: o.since(0), 1: o.since(0)}, "consumer-2": {}})
	if id, state, _ := o.lane(2); id != "consumer-1" || state != ownerMoving {
		t.Errorf("partition 2 between its owners: %s %s, want consumer-1 moving", id, state)
	}
	if id, state, _ := o.lane(0); id != "consumer-1" || state != ownerOwns {
		t.Errorf("partition 0, kept: %s %s, want consumer-1 owns", id, state)
	}
	o.tick("CompletingRebalance", map[string]claims{"consumer-1": {0: o.since(0), 1: o.since(0)}, "consumer-2": {2: o.since(3)}})
	got := o.rebalances(mark)
	want := []string{"consumer-1 gave up [2], keeps [0 1] (group PreparingRebalance)", "consumer-2 took [2] from consumer-1 (group CompletingRebalance)"}
	if !slices.Equal(got, want) {
		t.Errorf("the timeline reads\n%q\nwant\n%q", got, want)
	}
	if o.st.facts.rebalances != 2 {
		t.Errorf("%d rebalance(s) seen, want 2 (the first assignment, then this)", o.st.facts.rebalances)
	}
	m := o.st.members["consumer-1"]
	if own := o.st.owned("consumer-1"); !slices.Equal(own, []int32{0, 1}) || m.Status != "running" {
		t.Errorf("consumer-1 owns %v", own)
	}
}

// A killed member's partitions keep it as their owner, dead, with the
// seconds left of its session counting down, until another member says it
// took them; then the kill's lesson ticks, and the timeline names only them.
func TestAKilledMembersPartitionsCountDownThenMove(t *testing.T) {
	o := newOwnersLab(t, "consumer-1", "consumer-2", "consumer-3")
	o.tick("Stable", map[string]claims{"consumer-1": {0: o.since(0)}, "consumer-2": {1: o.since(0)}, "consumer-3": {2: o.since(0)}})
	mark := len(o.st.timeline)
	m := o.st.members["consumer-1"]
	m.killed, m.killedAt = true, o.now
	o.observe(harness.ProcessExited{At: o.now, Name: "consumer-1", Pid: 1})
	o.tick("Stable", map[string]claims{"consumer-2": {1: o.since(0)}, "consumer-3": {2: o.since(0)}})
	id, state, left := o.lane(0)
	if id != "consumer-1" || state != ownerDead || left < 4.5 || left > 5.5 {
		t.Errorf("partition 0 a second after its owner was killed: %s %s %.1f s left, want consumer-1 dead 5 s left", id, state, left)
	}
	if lessonDone(o.st.facts, "Kill a consumer") {
		t.Error("the kill's lesson ticked before its partition moved")
	}
	o.tick("CompletingRebalance", map[string]claims{"consumer-2": {1: o.since(0), 0: o.since(7)}, "consumer-3": {2: o.since(0)}})
	if got := o.rebalances(mark); !slices.Equal(got, []string{"consumer-2 took [0] from consumer-1 (group CompletingRebalance)"}) {
		t.Errorf("the timeline reads %q", got)
	}
	if !lessonDone(o.st.facts, "Kill a consumer") {
		t.Error("the kill's lesson did not tick once its partition moved")
	}
	// A stop next: its partition moves at once, and its lesson ticks.
	o.st.members["consumer-2"].stopped = true
	o.st.members["consumer-2"].Status = "stopping"
	o.observe(harness.ProcessExited{At: o.now, Name: "consumer-2", Pid: 2})
	o.tick("PreparingRebalance", map[string]claims{"consumer-3": {2: o.since(0)}})
	if id, state, _ := o.lane(1); id != "consumer-2" || state != ownerLeft {
		t.Errorf("partition 1 after its owner stopped: %s %s, want consumer-2 left", id, state)
	}
	mark = len(o.st.timeline)
	o.tick("Stable", map[string]claims{"consumer-3": {2: o.since(0), 0: o.since(9), 1: o.since(9)}})
	if got := o.rebalances(mark); !slices.Equal(got, []string{"consumer-3 took [0 1] from consumer-2 (group Stable)"}) {
		t.Errorf("the timeline reads %q", got)
	}
	if !lessonDone(o.st.facts, "Stop a consumer") {
		t.Error("the stop's lesson did not tick once its partitions moved")
	}
	if lessonDone(o.st.facts, kip848MoveStep) {
		t.Error("moves in a classic group ticked the KIP-848 lesson")
	}
}

// kip848MoveStep is how the KIP-848 lesson's step about a move begins.
const kip848MoveStep = "Kill or stop a consumer that owns partitions"

// The KIP-848 lesson's move ticks when a killed member's partitions move
// while the group runs KIP-848, and not before they move.
func TestAKilledMembersMoveUnderKIP848TicksItsLesson(t *testing.T) {
	o := newOwnersLab(t, "consumer-1", "consumer-2")
	o.st.snap.GroupProtocol = kafka.ProtocolConsumer
	o.tick("Stable", map[string]claims{"consumer-1": {0: o.since(0), 1: o.since(0)}, "consumer-2": {2: o.since(0)}})
	m := o.st.members["consumer-1"]
	m.killed, m.killedAt = true, o.now
	o.observe(harness.ProcessExited{At: o.now, Name: "consumer-1", Pid: 1})
	o.tick("Stable", map[string]claims{"consumer-2": {2: o.since(0)}})
	if lessonDone(o.st.facts, kip848MoveStep) {
		t.Error("the KIP-848 lesson ticked before the killed member's partitions moved")
	}
	o.tick("Stable", map[string]claims{"consumer-2": {2: o.since(0), 0: o.since(8), 1: o.since(8)}})
	if !lessonDone(o.st.facts, kip848MoveStep) {
		t.Error("the KIP-848 lesson did not tick once the killed member's partitions moved")
	}
}

// A paused member still says it owns its partitions when it wakes; the
// member given them while it slept owns them, and the zombie is said to
// have heard it lost them once it says so.
func TestAZombieDoesNotTakeBackWhatWasGivenAwayWhileItSlept(t *testing.T) {
	o := newOwnersLab(t, "consumer-1", "consumer-2")
	o.tick("Stable", map[string]claims{"consumer-1": {0: o.since(0)}, "consumer-2": {1: o.since(0), 2: o.since(0)}})
	m := o.st.members["consumer-1"]
	m.Status, m.wasPaused, m.pausedAt = "paused", true, o.now
	o.tick("Stable", map[string]claims{"consumer-2": {1: o.since(0), 2: o.since(0)}})
	if id, state, left := o.lane(0); id != "consumer-1" || state != ownerFrozen || left < 4.5 {
		t.Errorf("partition 0 of a paused member: %s %s %.1f s left", id, state, left)
	}
	o.tick("Stable", map[string]claims{"consumer-2": {0: o.since(8), 1: o.since(0), 2: o.since(0)}})
	mark := len(o.st.timeline)
	m.Status = "running"
	o.tick("PreparingRebalance", map[string]claims{"consumer-1": {0: o.since(0)}, "consumer-2": {0: o.since(8), 1: o.since(0), 2: o.since(0)}})
	if id, _, _ := o.lane(0); id != "consumer-2" {
		t.Errorf("the zombie's stale word took partition 0 back to %s", id)
	}
	o.tick("Stable", map[string]claims{"consumer-1": {}, "consumer-2": {0: o.since(8), 1: o.since(0), 2: o.since(0)}})
	if got := o.rebalances(mark); !slices.Equal(got, []string{"consumer-1 heard it lost [0] while paused, keeps nothing (group Stable)"}) {
		t.Errorf("the timeline reads %q", got)
	}
	if o.st.facts.pausedMoved != 1 {
		t.Errorf("pausedMoved = %d, want 1", o.st.facts.pausedMoved)
	}
}

// A zombie that heard it lost its partition and was given it back, both
// between two readings, says it owns it since a later time: it is told as
// lost, then taken back.
func TestAZombieGivenItsPartitionBackBetweenTwoReadingsIsToldBoth(t *testing.T) {
	o := newOwnersLab(t, "consumer-1", "consumer-2")
	o.tick("Stable", map[string]claims{"consumer-1": {0: o.since(0)}, "consumer-2": {1: o.since(0), 2: o.since(0)}})
	m := o.st.members["consumer-1"]
	m.Status, m.wasPaused, m.pausedAt = "paused", true, o.now
	o.tick("Stable", map[string]claims{"consumer-2": {0: o.since(8), 1: o.since(0), 2: o.since(0)}})
	mark := len(o.st.timeline)
	m.Status = "running"
	o.tick("Stable", map[string]claims{"consumer-1": {0: o.since(12)}, "consumer-2": {1: o.since(0), 2: o.since(0)}})
	want := []string{"consumer-1 heard it lost [0] while paused, keeps nothing; consumer-2 gave up [0], keeps [1 2]; consumer-1 took [0] from consumer-2 (group Stable)"}
	if got := o.rebalances(mark); !slices.Equal(got, want) {
		t.Errorf("the timeline reads\n%q\nwant\n%q", got, want)
	}
}

// More running members than partitions, each partition owned: a hot spare.
func TestAMemberOwningNothingBesideAFullGroupIsAHotSpare(t *testing.T) {
	o := newOwnersLab(t, "a", "b", "c", "d")
	o.tick("Stable", map[string]claims{"a": {0: o.since(0)}, "b": {1: o.since(0)}, "c": {2: o.since(0)}, "d": {}})
	if o.st.facts.idleMember == 0 {
		t.Error("no hot spare seen")
	}
}

// lessonDone reports whether the step starting with prefix is done.
func lessonDone(f facts, prefix string) bool {
	for _, l := range lessons(&f) {
		for _, s := range l.Steps {
			if strings.HasPrefix(s.Text, prefix) {
				return s.Done
			}
		}
	}
	return false
}

// The analytics member's partitions are its own word too: a round of the
// coordinator's, which describes no assignment, is no rebalance of it.
func TestTheAnalyticsGroupsOwnerIsItsMembersWord(t *testing.T) {
	o := newOwnersLab(t)
	o.st.analytics.status = "running"
	all := claims{0: o.since(0), 1: o.since(0), 2: o.since(0)}
	o.foldAnalytics(o.now, analyticsSample{view: topic(1, 1, 1), answered: true, owned: claims{}})
	o.foldAnalytics(o.now, analyticsSample{view: topic(1, 1, 1), answered: true, owned: all})
	mark := len(o.st.timeline)
	rebalancing := topic(1, 1, 1)
	rebalancing.State = "PreparingRebalance" // and no member with an assignment
	o.foldAnalytics(o.now, analyticsSample{view: rebalancing, answered: true, owned: all})
	o.foldAnalytics(o.now, analyticsSample{view: rebalancing}) // not answering: as it last said
	if got := o.rebalances(mark); len(got) != 0 {
		t.Errorf("the timeline reads %q, want nothing new", got)
	}
	if m := o.st.analytics.view.Members; len(m) != 1 || !slices.Equal(m[0].Owns, []int32{0, 1, 2}) {
		t.Errorf("the analytics members %+v, want analytics-1 owning [0 1 2]", m)
	}
}

// A member replaced under its id (a delivery-semantics round stops it and
// starts it again) is not taken for ended when its earlier process ends.
func TestTheEndOfAMembersEarlierProcessLeavesItRunning(t *testing.T) {
	o := newOwnersLab(t, "consumer-1")
	o.observe(harness.ProcessExited{At: o.now, Name: "consumer-1", Pid: 99})
	if m := o.st.members["consumer-1"]; m.Status != "running" {
		t.Errorf("consumer-1 is %s after another process of its name ended, want running", m.Status)
	}
	o.observe(harness.ProcessExited{At: o.now, Name: "consumer-1", Pid: 1})
	if m := o.st.members["consumer-1"]; m.Status != "exited" {
		t.Errorf("consumer-1 is %s after its own process ended, want exited", m.Status)
	}
}
