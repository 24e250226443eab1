package lab

// The guided lessons of the side panel: docs/KAFKA-CONCEPTS.md done in the
// lab. Each step ticks itself when the lab sees it happen.

// Lesson is one section of docs/KAFKA-CONCEPTS.md as steps.
type Lesson struct {
	Title string `json:"title"`
	Doc   string `json:"doc"` // the section it follows
	Steps []Step `json:"steps"`
}

// Step is one thing to do or see; Done once the lab has seen it.
type Step struct {
	Text string `json:"text"`
	Done bool   `json:"done"`
}

// lessons builds the panel from what happened so far. A step about a
// consumer ticks when what it promises is seen: the partitions of the very
// member acted on taken by another (owners.go), not any move at all.
func lessons(f *facts) []Lesson {
	step := func(text string, done bool) Step { return Step{Text: text, Done: done} }
	return []Lesson{
		{"Topics and partitions", "docs/KAFKA-CONCEPTS.md#1-topics-and-partitions", []Step{
			step("Watch orders arrive: each lane is a partition, each chip a message coloured by its customer (the key); hover a chip for its offset.", f.lastStored >= 30),
			step("Change the producer's rate, or pause it, and watch the high watermarks.", f.rateChanged > 0),
		}},
		{"Consumer groups and rebalancing", "docs/KAFKA-CONCEPTS.md#2-consumer-groups-and-rebalancing", []Step{
			step("Add a consumer.", f.added > 0),
			step("You caused a rebalance: the timeline says who gave up which partition and who took it.", f.causedRebalances > 0),
			step("Run more consumers than partitions: one owns nothing, a hot spare.", f.idleMember > 0),
			step("Stop a consumer that owns partitions (SIGTERM): it leaves the group and its partitions move at once.", f.stoppedMoved > 0),
		}},
		{"Kafka 4's group protocol (KIP-848)", "docs/KAFKA-CONCEPTS.md#the-two-group-protocols", []Step{
			step("Run the lab on it (foodpipe lab --group-protocol consumer): the header names the protocol, and each card shows the member's epoch and the target the broker assigned it.", f.kip848Seen > 0),
			step("Kill or stop a consumer that owns partitions: the broker moves only its partitions, at a later group epoch, and the others keep theirs.", f.kip848Moved > 0),
		}},
		{"Offsets and delivery", "docs/KAFKA-CONCEPTS.md#3-offsets-and-delivery", []Step{
			step("Kill a consumer that owns partitions (SIGKILL): they sit still until its session times out (the lane counts down), then move.", f.killedMoved > 0),
			step("Pause a consumer (SIGSTOP): a zombie that still thinks it owns its partitions.", f.paused > 0),
			step("Resume it (SIGCONT): it rejoins; nothing is stored twice (paused mid-batch, its late write is refused by the offset fence).", f.resumed > 0),
			step("Send an exact duplicate: it is dropped, not stored twice.", f.duplicates > 0),
			step("Cut the database: the circuit breaker opens and lag grows.", f.dbCuts > 0 && f.breakerOpened > 0),
			step("Wait for the line to mend: the breaker closes and the lag drains.", f.breakerClosed > 0),
		}},
		{"The dead-letter topic", "docs/KAFKA-CONCEPTS.md#4-the-dead-letter-topic", []Step{
			step("Send an invalid order, with a reason of your choosing.", f.invalid > 0),
			step("See it in the dead-letter list, with its reason and where it came from.", f.deadSeen > 0),
			step("Send a conflicting duplicate: same id, other content; it is set aside, the stored one kept.", f.conflicts > 0),
			step("Replay a dead letter: it is sent once; unfixed, it fails again.", f.replays > 0),
		}},
		{"Brokers", "docs/KAFKA-CONCEPTS.md#5-scaling-out", []Step{
			step("Restart the broker: producer and consumers reconnect by themselves, nothing is lost.", f.brokerRestarts > 0),
		}},
		// Ticked by the delivery-semantics panel (semantics.go).
		{"Delivery semantics", "docs/KAFKA-CONCEPTS.md#8-three-delivery-semantics-side-by-side", []Step{
			step("Start the two teaching groups beside the orders group: at most once (commit, then write) and at least once (write, then commit).", f.teachingStarted > 0),
			step("Kill one member of each of the three groups at once, mid-batch, each at its crash point.", f.semanticsRounds > 0),
			step("See at most once lose orders, at least once store some twice, and the orders group neither.", f.semanticsShown > 0),
		}},
		{"Transactions", "docs/KAFKA-CONCEPTS.md#9-transactions", []Step{
			step("Begin a transaction: the LSO stops below the high watermark and the orders group waits.", f.txn.begun > 0 && f.txn.heldBack > 0),
			step("Abort it: the records stay in the log, marked aborted, and are never stored.", f.txn.abortedUnstored > 0),
			step("Commit one: all its orders are stored.", f.txn.committedStored > 0),
		}},
		// Ticked by the notifications panel (notify.go).
		{"Notifications", "docs/KAFKA-CONCEPTS.md#10-a-side-effect-outside-the-database-notifications", []Step{
			step("Start the notifier: a third group emails each customer, and the mail server lists what arrived.", f.notifyStarted > 0 && f.notifyEmails > 0),
			step("Kill it between sending a batch and recording it, held at its crash point.", f.notifyRounds > 0),
			step("See its successor send those emails again: the mail server's duplicates are what PostgreSQL's in_doubt predicts, each with the same Message-ID.", f.notifyShown > 0),
		}},
	}
}
