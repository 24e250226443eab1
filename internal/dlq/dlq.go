// Package dlq owns the dead-letter record: the headers a dead letter carries
// on the dead-letter topic, how a letter the consumer set aside becomes a
// message there (whole, or cut down when the topic cannot take it whole),
// how a message there is read back, and which letters a replay may send
// again so that each original order is replayed once.
//
// The value of a dead letter is the original message, byte for byte, so that
// it can be inspected and replayed after a fix.
package dlq

import (
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/order"
	"foodpipe/internal/store"
)

// Headers of a dead letter.
const (
	HeaderReason          = "dlq.reason"
	HeaderError           = "dlq.error"
	HeaderSourceTopic     = "dlq.source.topic"
	HeaderSourcePartition = "dlq.source.partition"
	HeaderSourceOffset    = "dlq.source.offset"
	HeaderGroup           = "dlq.group"
	HeaderFailedAt        = "dlq.failed_at"
	// A cut-down copy, for a letter the topic could not take whole, says
	// so, how long the value was, and where the whole letter is kept
	// (dead_letters/ID: the dead_letters table's row).
	HeaderTruncated    = "dlq.truncated"
	HeaderOriginalSize = "dlq.original_size"
	HeaderStoredAs     = "dlq.stored_as"
	// HeaderReplayedFrom marks a message replayed to the orders topic with
	// the position (dlq-topic/partition/offset) of the dead letter it came
	// from; a replay that fails again carries it into its new dead letter.
	HeaderReplayedFrom = "dlq.replayed_from"
)

// Reasons the consumer itself gives, beside the validation reasons of package order.
const (
	// ReasonConflict: an order_id already stored with other content. The
	// stored order is kept; the newcomer is set aside for a person to judge.
	ReasonConflict = "conflicting_duplicate"
	// ReasonRejected: PostgreSQL refused the row although it passed validation.
	ReasonRejected = "db_rejected"
	// ReasonRefused: the notifier's mail server refused the customer's
	// address for good (a 5xx reply to RCPT TO); the order is not notified.
	ReasonRefused = "mail_refused"
)

// Reasons returns every reason a dead letter may carry: the validation
// reasons of package order, in their order, then the three the consumer gives
// itself. They are the values of foodpipe_orders_invalid_total's reason
// label, each exported at 0 from the start (wire.NewMetrics).
func Reasons() []string {
	rs := make([]string, 0, len(order.Reasons)+3)
	for _, r := range order.Reasons {
		rs = append(rs, string(r))
	}
	return append(rs, ReasonConflict, ReasonRejected, ReasonRefused)
}

// Cut-down copies: when the dead-letter topic cannot take a letter whole
// (the headers a dead letter adds can push a message just under the
// broker's limit over it), it gets this much of the value, key and error.
const (
	CutValue = 64 << 10
	CutKey   = 1 << 10
)

// Record is the dead-letter topic's message for d, set aside by a consumer
// of group: its key and value as they came with the original headers, or,
// when cut, the first CutValue bytes with headers that say where the whole
// letter is (the original headers stay with it in the database).
func Record(topic, group string, d store.DeadLetter, cut bool) *kgo.Record {
	headers := make([]kgo.RecordHeader, 0, 10+len(d.Headers))
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderReason, Value: []byte(d.Reason)},
		kgo.RecordHeader{Key: HeaderError, Value: []byte(d.Error)},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(d.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(d.Partition)))},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(d.Offset, 10))},
		kgo.RecordHeader{Key: HeaderGroup, Value: []byte(group)},
		kgo.RecordHeader{Key: HeaderFailedAt, Value: []byte(d.FailedAt.UTC().Format(time.RFC3339Nano))},
	)
	if !cut {
		for _, h := range d.Headers {
			headers = append(headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		return &kgo.Record{Topic: topic, Key: d.Key, Value: d.Value, Headers: headers}
	}
	headers[1].Value = headers[1].Value[:min(len(headers[1].Value), CutKey)]
	return &kgo.Record{Topic: topic, Key: d.Key[:min(len(d.Key), CutKey)], Value: d.Value[:min(len(d.Value), CutValue)],
		Headers: append(headers,
			kgo.RecordHeader{Key: HeaderTruncated, Value: []byte("true")},
			kgo.RecordHeader{Key: HeaderOriginalSize, Value: []byte(strconv.Itoa(len(d.Value)))},
			kgo.RecordHeader{Key: HeaderStoredAs, Value: []byte("dead_letters/" + strconv.FormatInt(d.ID, 10))},
		)}
}

// Letter is one message of the dead-letter topic, read back.
type Letter struct {
	Partition       int32  `json:"partition"`
	Offset          int64  `json:"offset"`
	Reason          string `json:"reason"`
	Error           string `json:"error"`
	SourceTopic     string `json:"source_topic"`
	SourcePartition string `json:"source_partition"`
	SourceOffset    string `json:"source_offset"`
	FailedAt        string `json:"failed_at"`
	Key             string `json:"key"`
	Value           string `json:"value"`
	// ReplayedFrom is, for a dead letter that came from a replay, the
	// position of the dead letter that was replayed: the chain back to the
	// original.
	ReplayedFrom string `json:"replayed_from,omitempty"`
	// ReplayedAt is when this dead letter was replayed, if it was (set by
	// whoever read the replay markers).
	ReplayedAt string `json:"replayed_at,omitempty"`
	// Truncated: the dead-letter topic holds a cut-down copy; StoredAs
	// names the dead_letters row that keeps the whole message.
	Truncated bool   `json:"truncated,omitempty"`
	StoredAs  string `json:"stored_as,omitempty"`

	Record *kgo.Record `json:"-"`
}

// Decode reads a message of the dead-letter topic.
func Decode(r *kgo.Record) Letter {
	h := map[string]string{}
	for _, kv := range r.Headers {
		if _, seen := h[kv.Key]; !seen { // the dead letter's own come first
			h[kv.Key] = string(kv.Value)
		}
	}
	return Letter{
		Partition: r.Partition, Offset: r.Offset, Reason: h[HeaderReason], Error: h[HeaderError],
		SourceTopic: h[HeaderSourceTopic], SourcePartition: h[HeaderSourcePartition],
		SourceOffset: h[HeaderSourceOffset], FailedAt: h[HeaderFailedAt],
		Key: string(r.Key), Value: string(r.Value), ReplayedFrom: h[HeaderReplayedFrom],
		Truncated: h[HeaderTruncated] == "true", StoredAs: h[HeaderStoredAs], Record: r,
	}
}

// Position names a dead letter: dlq-topic/partition/offset.
func (l Letter) Position() string {
	return fmt.Sprintf("%s/%d/%d", l.Record.Topic, l.Partition, l.Offset)
}

// Preview shows the first n bytes of a value, quoted so that control
// characters and invalid UTF-8 stay visible.
func Preview(b []byte, n int) string {
	more := ""
	if len(b) > n {
		b, more = b[:n], "…"
	}
	return strconv.Quote(string(b)) + more
}
