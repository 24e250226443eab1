package report

import (
	"bytes"
	"strings"
	"testing"

	"foodpipe/internal/demo"
	"foodpipe/internal/kafka"
)

// One of a thing reads as one: "1 partition", "1 member", "1 message".
func TestCountsOfOneReadInTheSingular(t *testing.T) {
	var status bytes.Buffer
	PrintStatus(&status, Status{Topic: "food-orders", Group: "order-processors", GroupState: "Stable", DLQTopic: "food-orders.dlq",
		Partitions: []PartitionStatus{{Partition: 0, HighWatermark: 9, LastStable: 9, Committed: 9, Rows: 8, Owner: "foodpipe-alice",
			Expired: []ExpiredStatus{{From: 3, To: 3, Recorded: true}}}},
		Members:     []MemberStatus{{ClientID: "foodpipe-alice", Partitions: []int32{0}}},
		OtherGroups: []GroupStatus{{Group: "order-analytics", State: "Stable", Members: 1}}})
	var topic bytes.Buffer
	PrintTopic(&topic, kafka.TopicInfo{Name: "food-orders.dlq", Partitions: []kafka.PartitionInfo{{}}, ReplicationFactor: 1})
	var summary bytes.Buffer
	PrintSummary(&summary, demo.Summary{Produced: 1, Stored: 1, Analytics: &demo.AnalyticsSummary{Group: "order-analytics", Counted: 1, Checked: 1}})
	for _, tt := range []struct{ what, out, want string }{
		{"status", status.String(), "topic food-orders: 1 partition    group order-processors: Stable, 1 member    dead letters"},
		{"status", status.String(), "offsets 3-3 (1 message) EXPIRED"},
		{"status", status.String(), "group order-analytics, Stable, 1 member, total lag"},
		{"topic describe", topic.String(), "topic food-orders.dlq: 1 partition, replication factor 1"},
		{"demo summary", summary.String(), "analytics   1 order counted by group order-analytics"},
	} {
		if !strings.Contains(tt.out, tt.want) {
			t.Errorf("%s lacks %q:\n%s", tt.what, tt.want, tt.out)
		}
	}
}
