package kafka

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupMember joins group on topic as a consumer that polls until the end
// of the test, under KIP-848's protocol when kip848.
func groupMember(t *testing.T, addr, group, topic, id string, kip848 bool) {
	t.Helper()
	opts := append(ClientOpts(Options{Brokers: []string{addr}, ClientID: id}),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.InstanceID(id))
	if kip848 {
		opts = append(opts, kgo.ServerSideBalancer())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
}

// InspectGroup tells the two group protocols apart, and for a KIP-848
// group gives the group's epoch and each member's epoch and target
// assignment, which the classic protocol has none of.
func TestInspectGroupTellsTheProtocolAndAKIP848MembersEpochAndTarget(t *testing.T) {
	for _, tt := range []struct {
		protocol string
		kip848   bool
	}{{ProtocolClassic, false}, {ProtocolConsumer, true}} {
		t.Run(tt.protocol, func(t *testing.T) {
			ctx := context.Background()
			b := startBroker(t, BrokerOptions{GroupSessionTimeout: 3 * time.Second})
			adm := admin(t, b.Addr())
			if _, err := EnsureTopics(ctx, adm, TopicSpec{Name: "t", Partitions: 4, ReplicationFactor: 1}); err != nil {
				t.Fatal(err)
			}
			if v, err := InspectGroup(ctx, adm, "t", "g"); err != nil || v.Protocol != "" {
				t.Fatalf("a group nobody joined: protocol %q, %v; want none", v.Protocol, err)
			}
			groupMember(t, b.Addr(), "g", "t", "alice", tt.kip848)
			groupMember(t, b.Addr(), "g", "t", "bob", tt.kip848)
			var v GroupView
			deadline := time.Now().Add(30 * time.Second)
			for {
				var err error
				if v, err = InspectGroup(ctx, adm, "t", "g"); err != nil {
					t.Fatal(err)
				}
				if len(v.Members) == 2 && len(v.Members[0].Partitions) == 2 && len(v.Members[1].Partitions) == 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the group never shared the partitions: %+v", v)
				}
				time.Sleep(100 * time.Millisecond)
			}
			if v.Protocol != tt.protocol {
				t.Errorf("protocol %q, want %q", v.Protocol, tt.protocol)
			}
			owners := map[int32]string{}
			for _, p := range v.Partitions {
				owners[p.Partition] = p.Owner
			}
			for _, m := range v.Members {
				if m.InstanceID != m.ClientID {
					t.Errorf("member %s has instance id %q", m.ClientID, m.InstanceID)
				}
				for _, p := range m.Partitions {
					if owners[p] != m.ClientID {
						t.Errorf("partition %d is owned by %q, but %s has it", p, owners[p], m.ClientID)
					}
				}
				switch {
				case !tt.kip848 && (m.Epoch != 0 || m.Target != nil):
					t.Errorf("a classic member with an epoch or a target: %+v", m)
				case tt.kip848 && (m.Epoch <= 0 || m.Epoch > v.Epoch || !slices.Equal(m.Target, m.Partitions)):
					t.Errorf("a KIP-848 member of a settled group of epoch %d: %+v; want an epoch up to the group's and its target owned", v.Epoch, m)
				}
			}
			if tt.kip848 && (v.Epoch <= 0 || v.AssignmentEpoch != v.Epoch) {
				t.Errorf("a settled KIP-848 group of epoch %d, assignment epoch %d: want both the same, above 0", v.Epoch, v.AssignmentEpoch)
			}
		})
	}
}

// The embedded broker takes a group's own session timeout, as Kafka 4
// does (the group config consumer.session.timeout.ms).
func TestAGroupGetsItsOwnSessionTimeout(t *testing.T) {
	b := startBroker(t, BrokerOptions{})
	cl, err := kgo.NewClient(ClientOpts(Options{Brokers: []string{b.Addr()}})...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := SetGroupSessionTimeout(context.Background(), cl, "g", 7*time.Second); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeGroupConfig, "g"
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, r := range resp.Resources {
		for _, c := range r.Configs {
			if c.Name == "consumer.session.timeout.ms" && c.Value != nil {
				got = *c.Value
			}
		}
	}
	if got != "7000" {
		t.Errorf("the group's consumer.session.timeout.ms is %q, want 7000", got)
	}
}
