package lab

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A step ticks only once what it asks for has happened, and not before.
func TestLessonStepsTickWhenTheirEventHappens(t *testing.T) {
	count := func(f facts) (done, all int) {
		for _, l := range lessons(&f) {
			for _, s := range l.Steps {
				all++
				if s.Done {
					done++
				}
			}
		}
		return done, all
	}
	if done, _ := count(facts{}); done != 0 {
		t.Fatalf("%d steps done before anything happened", done)
	}
	// A kill alone is not the lesson, nor a kill and another member's
	// partitions moving: the killed member's partitions must have moved.
	if done, _ := count(facts{killed: 1}); done != 0 {
		t.Errorf("a kill with no partition moved ticked %d step(s)", done)
	}
	if done, _ := count(facts{killed: 1, pausedMoved: 1}); done != 0 {
		t.Errorf("a kill and some other member's partitions moving ticked %d step(s)", done)
	}
	if done, _ := count(facts{killed: 1, killedMoved: 1}); done != 1 {
		t.Errorf("a kill whose partitions moved ticked %d step(s), want 1", done)
	}
	if done, _ := count(facts{stopped: 1, stoppedMoved: 1}); done != 1 {
		t.Errorf("a stop whose partitions moved ticked %d step(s), want 1", done)
	}
	// The breaker steps need the cut to have opened and closed it.
	if done, _ := count(facts{dbCuts: 1}); done != 0 {
		t.Errorf("a cut with no breaker opened ticked %d step(s)", done)
	}
	// The semantics' last step needs a round whose counts showed them.
	if done, _ := count(facts{teachingStarted: 1, semanticsRounds: 1}); done != 2 {
		t.Errorf("teaching groups started and a round begun ticked %d step(s), want 2", done)
	}
	// A transaction begun that held no lane back has not shown the lesson.
	if done, _ := count(facts{txn: txnFacts{begun: 1}}); done != 0 {
		t.Errorf("a transaction that held nothing back ticked %d step(s)", done)
	}
	// The notifier started with no email yet at the server has not shown
	// the first step; a round whose counts disagreed not the last.
	if done, _ := count(facts{notifyStarted: 1}); done != 0 {
		t.Errorf("a notifier started with no email received ticked %d step(s)", done)
	}
	if done, _ := count(facts{notifyStarted: 1, notifyEmails: 1, notifyRounds: 1}); done != 2 {
		t.Errorf("a notifier started, emails received and a round begun ticked %d step(s), want 2", done)
	}
	// A KIP-848 group seen ticks its first step; a move in it, its second.
	if done, _ := count(facts{kip848Seen: 1}); done != 1 {
		t.Errorf("a KIP-848 group seen ticked %d step(s), want 1", done)
	}
	everything := facts{added: 1, stopped: 1, killed: 1, paused: 1, resumed: 1, causedRebalances: 1, killedMoved: 1, stoppedMoved: 1,
		invalid: 1, duplicates: 1, conflicts: 1, deadSeen: 1, replays: 1, dbCuts: 1, breakerOpened: 1, breakerClosed: 1,
		brokerRestarts: 1, rateChanged: 1, idleMember: 1, lastStored: 100, teachingStarted: 1, semanticsRounds: 1, semanticsShown: 1,
		txn:           txnFacts{begun: 1, heldBack: 1, abortedUnstored: 1, committedStored: 1},
		notifyStarted: 1, notifyEmails: 1, notifyRounds: 1, notifyShown: 1, kip848Seen: 1, kip848Moved: 1}
	if done, all := count(everything); done != all {
		t.Errorf("with everything done, %d of %d steps ticked", done, all)
	}
}

// A transaction's record is pending until the next marker of its own
// producer in the partition, then what that marker says; another
// producer's marker ends nothing of it.
func TestATransactionalRecordIsWhatItsProducersNextMarkerSays(t *testing.T) {
	es := []txnEntry{
		{offset: 10, pid: 1, key: "CUST-1"},
		{offset: 11, pid: 2, key: "CUST-2"},
		{offset: 12, pid: 2, isMark: true, marker: kmsg.ControlRecordKeyTypeCommit},
		{offset: 13, pid: 1, key: "CUST-3"},
		{offset: 14, pid: 1, isMark: true, marker: kmsg.ControlRecordKeyTypeAbort},
		{offset: 15, pid: 1, key: "CUST-4"},
	}
	got := txnMessages(es)
	want := []struct{ kind, state string }{{"record", "aborted"}, {"record", "committed"}, {"commit", ""}, {"record", "aborted"}, {"abort", ""}, {"record", "pending"}}
	for i, w := range want {
		if got[i].Kind != w.kind || got[i].State != w.state || got[i].Offset != es[i].offset {
			t.Errorf("offset %d: %s %q, want %s %q", es[i].offset, got[i].Kind, got[i].State, w.kind, w.state)
		}
	}
}
