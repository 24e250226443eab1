package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/demo"
	"foodpipe/internal/kafka"
	"foodpipe/internal/order"
	"foodpipe/internal/store/dbtest"
)

func TestStatusSaysWhatAGroupStateMeansAndSumsTheLag(t *testing.T) {
	parts := []PartitionStatus{
		{Partition: 0, HighWatermark: 12, Committed: 8, Lag: 4, Rows: 8, LastCommitter: "foodpipe-alice"},
		{Partition: 1, HighWatermark: 5, Committed: 5, Lag: 0, Rows: 5, LastCommitter: "foodpipe-bob"},
		{Partition: 2, HighWatermark: 3, Committed: -1, Lag: 3, Rows: 0},
	}
	tests := []struct {
		name      string
		state     string
		owner     string
		want      []string
		wantNever []string
	}{
		{"while rebalancing, the last committer stands in for the owner", "PreparingRebalance", "",
			[]string{"the group is rebalancing", "foodpipe-alice (rebalancing)", "foodpipe-bob (rebalancing)", "total lag 7",
				"(rebalancing: not reported until it completes)"}, []string{"[]"}},
		{"a stable group shows its owners as they are", "Stable", "foodpipe-carol",
			[]string{"foodpipe-carol", "total lag 7"}, []string{"(rebalancing)", "foodpipe-alice"}},
		{"a group nobody joined is explained", "Dead", "",
			[]string{"Dead (no consumer running)", "Dead is Kafka's name for a group it has no record of"}, []string{"(rebalancing)"}},
		{"a group whose members left keeps its offsets", "Empty", "",
			[]string{"Empty: no member is running; the committed offsets are kept"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Status{Topic: "food-orders", Group: "order-processors", GroupState: tt.state, TotalLag: 7}
			if tt.state == "PreparingRebalance" {
				// The coordinator describes the members of a rebalancing group with no partitions.
				s.Members = []MemberStatus{{ClientID: "foodpipe-dave", Partitions: []int32{}}}
			}
			for _, p := range parts {
				p.Owner = tt.owner
				s.Partitions = append(s.Partitions, p)
			}
			var buf bytes.Buffer
			printStatus(&buf, s)
			out := buf.String()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("status lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.wantNever {
				if strings.Contains(out, w) {
					t.Errorf("status shows %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestStatusSaysPlainlyWhenTheSchemaIsNotMigrated(t *testing.T) {
	addr := broker(t)
	vars := []string{"KAFKA_BROKERS", addr, "DATABASE_URL", dbtest.New(t)}
	if err := newRun(t, vars...).do(context.Background(), "topic", "create"); err != nil {
		t.Fatal(err)
	}
	r := newRun(t, vars...)
	if err := r.do(context.Background(), "status"); err != nil {
		t.Fatal(err)
	}
	out := r.stdout.String()
	if !strings.Contains(out, "the database has no orders table yet: run `foodpipe migrate up`") || strings.Contains(out, "SQLSTATE") {
		t.Errorf("status before the first migration:\n%s", out)
	}
}

func TestTopicKeysShowsAKeySplitByTwoPartitioners(t *testing.T) {
	// CUST-10003 is one of the customers the two hashes place apart.
	const key = "CUST-10003"
	m, c := int32(kafka.Murmur2Partition(key, 3)), int32(kafka.CRC32Partition(key, 3))
	if m == c {
		t.Fatalf("murmur2 and crc32 both give %d for %s", m, key)
	}
	recs := []*kgo.Record{{Partition: m, Key: []byte(key)}, {Partition: m, Key: []byte(key)}, {Partition: c, Key: []byte(key)}}
	var buf bytes.Buffer
	printKeys(&Env{Stdout: &buf}, "food-orders", kafka.AnalyzeKeys(3, recs))
	out := buf.String()
	for _, w := range []string{"PARTITION  MESSAGES  KEYS", "1 key is on more than one partition", key + " is on partitions",
		"1 of these 1 key goes to another partition"} {
		if !strings.Contains(out, w) {
			t.Errorf("topic keys lacks %q:\n%s", w, out)
		}
	}
}

func TestTopicKeysAgreesWithTheCustomersOnOnePartition(t *testing.T) {
	var recs []*kgo.Record
	for _, k := range order.Customers() {
		recs = append(recs, &kgo.Record{Partition: int32(kafka.Murmur2Partition(k, 3)), Key: []byte(k)})
	}
	var buf bytes.Buffer
	printKeys(&Env{Stdout: &buf}, "food-orders", kafka.AnalyzeKeys(3, recs))
	out := buf.String()
	if !strings.Contains(out, "every key is on one partition") || !strings.Contains(out, "of these 100 keys") {
		t.Errorf("topic keys over the 100 customers:\n%s", out)
	}
	// Eight keys a line: no line is longer than a wide terminal.
	for _, l := range strings.Split(out, "\n") {
		if len(l) > 160 && !strings.Contains(l, "kcat") {
			t.Errorf("line of %d characters: %s", len(l), l)
		}
	}
}

// One of a thing reads as one: "1 partition", "1 member", "1 message".
func TestCountsOfOneReadInTheSingular(t *testing.T) {
	var status bytes.Buffer
	printStatus(&status, Status{Topic: "food-orders", Group: "order-processors", GroupState: "Stable", DLQTopic: "food-orders.dlq",
		Partitions: []PartitionStatus{{Partition: 0, HighWatermark: 9, LastStable: 9, Committed: 9, Rows: 8, Owner: "foodpipe-alice",
			Expired: []ExpiredStatus{{From: 3, To: 3, Recorded: true}}}},
		Members:     []MemberStatus{{ClientID: "foodpipe-alice", Partitions: []int32{0}}},
		OtherGroups: []GroupStatus{{Group: "order-analytics", State: "Stable", Members: 1}}})
	var topic bytes.Buffer
	printTopic(&Env{Stdout: &topic}, kafka.TopicInfo{Name: "food-orders.dlq", Partitions: []kafka.PartitionInfo{{}}, ReplicationFactor: 1})
	var summary bytes.Buffer
	printSummary(&summary, demo.Summary{Produced: 1, Stored: 1, Analytics: &demo.AnalyticsSummary{Group: "order-analytics", Counted: 1, Checked: 1}})
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
