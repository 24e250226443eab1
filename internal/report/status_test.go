package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"

	"foodpipe/internal/inspect"
	"foodpipe/internal/kafka"
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
			PrintStatus(&buf, s)
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

// `status --json` is read by scripts: the shape StatusOf makes of the read
// model is kept field for field, an empty list as [] where one was before.
func TestStatusOfKeepsTheJSONShape(t *testing.T) {
	g := inspect.Group{Topic: "food-orders", TopicID: "AAAA", Group: "order-processors", State: "Stable", Earlier: []string{"food-orders@BBBB"},
		Members: []kafka.MemberView{{ClientID: "alice", Host: "/10.0.0.1", MemberID: "m-1", Partitions: []int32{0, 1}}},
		Partitions: []inspect.Partition{
			{Partition: 0, LogStart: 2, HighWatermark: 12, LastStable: 10, Committed: 8, CommittedBy: "alice", Owner: "alice", Stored: 9, Lag: 1, Rows: 7,
				Expired: []inspect.Expired{{From: 0, To: 1, Recorded: true}}},
			{Partition: 1, HighWatermark: 5, LastStable: 5, Committed: -1, Stored: -1, Lag: 5, Rows: -1},
		}}
	others := []inspect.Group{{Group: "order-analytics", State: "Empty", Partitions: []inspect.Partition{{Lag: 3}}}}
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(StatusOf(g, "food-orders.dlq", 4, others, nil)); err != nil {
		t.Fatal(err)
	}
	want := `{"topic":"food-orders","topic_id":"AAAA","group":"order-processors","group_state":"Stable",` +
		`"partitions":[{"partition":0,"log_start":2,"high_watermark":12,"last_stable_offset":10,"committed":8,"stored":9,"lag":1,` +
		`"expired":[{"from":0,"to":1,"recorded":true}],"rows":7,"owner":"alice","last_committer":"alice"},` +
		`{"partition":1,"log_start":0,"high_watermark":5,"last_stable_offset":5,"committed":-1,"stored":-1,"lag":5,"expired":[],"rows":-1,"owner":""}],` +
		`"members":[{"client_id":"alice","host":"/10.0.0.1","member_id":"m-1","partitions":[0,1]}],"total_lag":6,` +
		`"dlq_topic":"food-orders.dlq","dlq_size":4,"other_groups":[{"group":"order-analytics","state":"Empty","members":0,"total_lag":3}],` +
		`"earlier_topics":["food-orders@BBBB"]}` + "\n"
	if b.String() != want {
		t.Errorf("status as JSON:\n%s\nwant:\n%s", b.String(), want)
	}

	// A group nobody joined, on a database without the schema.
	b.Reset()
	notMigrated := fmt.Errorf("count rows: %w", &pgconn.PgError{Code: pgerrcode.UndefinedTable})
	if err := json.NewEncoder(&b).Encode(StatusOf(inspect.Group{Topic: "food-orders", Group: "order-processors", State: "Dead"},
		"food-orders.dlq", 0, nil, notMigrated)); err != nil {
		t.Fatal(err)
	}
	want = `{"topic":"food-orders","group":"order-processors","group_state":"Dead","partitions":null,"members":null,"total_lag":0,` +
		`"dlq_topic":"food-orders.dlq","dlq_size":0,` +
		"\"database_error\":\"the database has no orders table yet: run `foodpipe migrate up` (a consumer does it when it starts)\"," +
		`"other_groups":[]}` + "\n"
	if b.String() != want {
		t.Errorf("status as JSON:\n%s\nwant:\n%s", b.String(), want)
	}
}

// status --watch says why a look failed, in its own words, and how long no
// broker has answered: since the first look that found none.
func TestStatusWatchSaysWhyALookFailedAndSinceWhen(t *testing.T) {
	var b bytes.Buffer
	v := StatusWatch{W: &b, Every: 2 * time.Second, Within: 5 * time.Second, Brokers: []string{"127.0.0.1:9", "evil\x1b[2J"}}
	at := time.Date(2025, 1, 10, 15, 30, 0, 0, time.UTC)
	refused := fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")})
	v.Begin(at)
	v.End(refused, at)
	v.Begin(at.Add(2 * time.Second))
	v.End(refused, at.Add(2*time.Second))
	v.Begin(at.Add(4 * time.Second))
	v.End(fmt.Errorf("read status: %w", context.DeadlineExceeded), at.Add(4*time.Second))
	v.Begin(at.Add(6 * time.Second))
	v.End(nil, at.Add(6*time.Second))
	v.Begin(at.Add(8 * time.Second))
	v.End(refused, at.Add(8*time.Second))
	v.End(errors.New("no\x1b[2J"), at.Add(10*time.Second))
	unreachable := "Kafka broker unreachable at 127.0.0.1:9,evil\\x1b[2J since %s, retrying every 2s: dial tcp: connection refused\n\n"
	want := "15:30:00  (every 2s; Ctrl-C to stop)\n" + fmt.Sprintf(unreachable, "15:30:00") +
		"15:30:02  (every 2s; Ctrl-C to stop)\n" + fmt.Sprintf(unreachable, "15:30:00") +
		"15:30:04  (every 2s; Ctrl-C to stop)\nno status within 5s (a Kafka broker or PostgreSQL does not answer), retrying every 2s\n\n" +
		"15:30:06  (every 2s; Ctrl-C to stop)\n\n" +
		"15:30:08  (every 2s; Ctrl-C to stop)\n" + fmt.Sprintf(unreachable, "15:30:08") +
		"status unavailable: no\\x1b[2J\n\n"
	if b.String() != want {
		t.Errorf("the view:\n%s\nwant:\n%s", b.String(), want)
	}
}

// A KIP-848 group's status says so, with the group's epoch, and each
// member's epoch, what it owns and what the broker means it to own; its
// JSON carries them, a classic group's not.
func TestStatusShowsAKIP848GroupsEpochsAndTargets(t *testing.T) {
	g := inspect.Group{Topic: "food-orders", Group: "order-processors", State: "Reconciling", Protocol: kafka.ProtocolConsumer,
		Epoch: 9, AssignmentEpoch: 9,
		Members: []kafka.MemberView{
			{ClientID: "foodpipe-alice", InstanceID: "alice", Epoch: 9, Partitions: []int32{0, 1}, Target: []int32{0}},
			{ClientID: "foodpipe-bob", InstanceID: "bob", Epoch: 8, Partitions: []int32{2}, Target: []int32{1, 2}},
			{ClientID: "foodpipe-carol", InstanceID: "carol", Epoch: -2, Partitions: []int32{}, Target: []int32{}},
		},
		Partitions: []inspect.Partition{{Partition: 0, Owner: "foodpipe-alice"}, {Partition: 1, Owner: "foodpipe-alice"}, {Partition: 2, Owner: "foodpipe-bob"}}}
	s := StatusOf(g, "food-orders.dlq", 0, nil, nil)
	var buf bytes.Buffer
	PrintStatus(&buf, s)
	out := strings.Join(strings.Fields(buf.String()), " ") // the columns' widths aside
	for _, w := range []string{
		"group order-processors: Reconciling, 3 members protocol consumer (KIP-848), epoch 9",
		"Reconciling: the broker has a new target assignment (epoch 9)",
		"MEMBER HOST EPOCH PARTITIONS TARGET",
		"foodpipe-alice 9 [0 1] [0]",
		"foodpipe-bob 8 [2] [1 2]",
		"foodpipe-carol -2 (away) [] []",
		"epoch -2: a static member that left for a while",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "(rebalancing)") {
		t.Errorf("a KIP-848 group's owners are marked rebalancing:\n%s", out)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"group_protocol":"consumer","group_epoch":9,"assignment_epoch":9`,
		`{"client_id":"foodpipe-bob","host":"","member_id":"","instance_id":"bob","partitions":[2],"epoch":8,"target":[1,2]}`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("status as JSON lacks %s:\n%s", w, b)
		}
	}

	g.Protocol, g.Epoch, g.AssignmentEpoch, g.State = kafka.ProtocolClassic, 0, 0, "Stable"
	g.Members = []kafka.MemberView{{ClientID: "foodpipe-alice", Partitions: []int32{0, 1, 2}}}
	buf.Reset()
	PrintStatus(&buf, StatusOf(g, "food-orders.dlq", 0, nil, nil))
	if out := buf.String(); !strings.Contains(out, "1 member    protocol classic    dead letters") || strings.Contains(out, "EPOCH") {
		t.Errorf("a classic group's status:\n%s", out)
	}
}
