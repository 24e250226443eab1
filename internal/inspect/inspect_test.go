package inspect

import (
	"reflect"
	"testing"

	"foodpipe/internal/kafka"
	"foodpipe/internal/store"
)

// A partition is taken up from the greater of the stored and the committed
// offset, or from the log start when the group's offsets of it belong to an
// earlier topic; what lies below the log start from there expired unread
// and is no lag; the lag runs to the last stable offset.
func TestAPartitionIsTakenUpWhereItsMembersWillStart(t *testing.T) {
	const scope = "food-orders@NEW"
	rec := record{
		offsets: store.OffsetsOf([]store.StoredOffset{
			{Topic: scope, Partition: 0, Next: 2},
			{Topic: scope, Partition: 1, Next: 9},
			{Topic: "food-orders@OLD", Partition: 2, Next: 7},
		}, "food-orders", scope),
		expired: map[int32][]store.ExpiredRange{0: {{Topic: scope, Partition: 0, From: 0, To: 1}}},
	}
	for _, tt := range []struct {
		name string
		view kafka.PartitionView
		want Partition
	}{
		{"offsets Kafka deleted below the stored one expired, recorded or not, and are no lag",
			kafka.PartitionView{Partition: 0, Start: 6, HighWatermark: 10, Stable: 10, Committed: 1, Lag: 4},
			Partition{Partition: 0, LogStart: 6, HighWatermark: 10, LastStable: 10, Committed: 1, Stored: 2, Lag: 4, CommittedLag: 4,
				Expired: []Expired{{From: 0, To: 1, Recorded: true}, {From: 2, To: 5}}}},
		{"a stored offset ahead of the committed one is where the group stands",
			kafka.PartitionView{Partition: 1, HighWatermark: 12, Stable: 12, Committed: 5, Lag: 7, Owner: "foodpipe-a", CommittedBy: "foodpipe-a"},
			Partition{Partition: 1, HighWatermark: 12, LastStable: 12, Committed: 5, CommittedBy: "foodpipe-a", Owner: "foodpipe-a",
				Stored: 9, Lag: 3, CommittedLag: 7}},
		{"a partition stored only in an earlier topic is read from its log start, its committed offset not trusted",
			kafka.PartitionView{Partition: 2, Start: 1, HighWatermark: 4, Stable: 4, Committed: 8},
			Partition{Partition: 2, LogStart: 1, HighWatermark: 4, LastStable: 4, Committed: 8, Stored: -1, Fresh: true, Lag: 3}},
		{"an open transaction holds the lag at the last stable offset",
			kafka.PartitionView{Partition: 3, HighWatermark: 12, Stable: 10, Committed: 4, Lag: 6},
			Partition{Partition: 3, HighWatermark: 12, LastStable: 10, Committed: 4, Stored: -1, Lag: 6, CommittedLag: 6}},
		{"a group that committed nothing has everything kept still to read",
			kafka.PartitionView{Partition: 4, Start: 3, HighWatermark: 9, Stable: 9, Committed: -1, Lag: 6},
			Partition{Partition: 4, LogStart: 3, HighWatermark: 9, LastStable: 9, Committed: -1, Stored: -1, Lag: 6, CommittedLag: 6}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := rec.partition(tt.view)
			tt.want.Rows = -1
			if tt.want.Expired == nil {
				tt.want.Expired = []Expired{}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// Without the database, the model is Kafka's: nothing stored, nothing
// counted, the lag from the committed offset.
func TestWithoutTheDatabaseAPartitionIsKafkasView(t *testing.T) {
	got := record{}.partition(kafka.PartitionView{Partition: 0, Start: 2, HighWatermark: 9, Stable: 9, Committed: 1, Lag: 7})
	want := Partition{Partition: 0, LogStart: 2, HighWatermark: 9, LastStable: 9, Committed: 1, Stored: -1, Lag: 7, CommittedLag: 7,
		Expired: []Expired{{From: 1, To: 1}}, Rows: -1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if g := (Group{Partitions: []Partition{got, {Lag: 3}}}); g.Lag() != 10 {
		t.Errorf("the group's lag is %d, want the partitions' summed, 10", g.Lag())
	}
}
