package dlq

import (
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Replay-once. Which dead letters were replayed is kept in a topic of its
// own, MarkerTopic, one small message per replay keyed by the dead letter's
// position. A replay reads it first, so a second replay of the same dead
// letter is skipped. Were the process to die between publishing and
// recording, the order would be published twice; the consumer then counts
// the second copy as a duplicate by order_id, so the table is still right.

// MarkerTopic is the topic that records the replays of dlqTopic's letters.
func MarkerTopic(dlqTopic string) string { return dlqTopic + ".replayed" }

// Decision is what a replay does with one dead letter, and why.
type Decision struct {
	Letter Letter
	Replay bool
	Why    string // why it is skipped
}

// Plan decides which of the chosen letters to replay. replayed maps the
// positions already replayed to when. byName is true when the letters were
// named one by one (--offset): then a letter that came from a replay is
// replayed again, for a fix that came since; otherwise it is skipped, since
// replaying it would only repeat the replay of its original.
func Plan(letters []Letter, replayed map[string]string, byName bool) []Decision {
	out := make([]Decision, len(letters))
	for i, l := range letters {
		d := Decision{Letter: l, Replay: true}
		switch {
		case replayed[l.Position()] != "":
			d.Replay, d.Why = false, "replayed before"
		case l.ReplayedFrom != "" && !byName:
			d.Replay, d.Why = false, "failed again after the replay of "+l.ReplayedFrom+"; name it with --offset to replay it again"
		case l.Truncated:
			d.Replay, d.Why = false, "a cut-down copy; the whole message is in the database as "+l.StoredAs
		}
		out[i] = d
	}
	return out
}

// ReplayRecord is l re-published to the orders topic: the original key,
// value and headers, and where it came from.
func ReplayRecord(l Letter, ordersTopic string) *kgo.Record {
	headers := []kgo.RecordHeader{{Key: HeaderReplayedFrom, Value: []byte(l.Position())}}
	for _, h := range l.Record.Headers {
		if !strings.HasPrefix(h.Key, "dlq.") {
			headers = append(headers, h)
		}
	}
	return &kgo.Record{Topic: ordersTopic, Key: l.Record.Key, Value: l.Record.Value, Headers: headers}
}

// MarkerRecord records that l was replayed at at.
func MarkerRecord(l Letter, markerTopic string, at time.Time) *kgo.Record {
	return &kgo.Record{Topic: markerTopic, Key: []byte(l.Position()), Value: []byte(at.UTC().Format(time.RFC3339))}
}
