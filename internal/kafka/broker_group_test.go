package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// These tests pin the changes carried in third_party/kfake/groups.go
// (PATCHES.md). They speak the group protocols by hand, so that each step of
// a rebalance happens exactly when the test says, as it does for crashed
// consumers in a kill storm.

// groupBroker is an embedded broker that accepts short session timeouts.
func groupBroker(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.BrokerConfigs(map[string]string{"group.min.session.timeout.ms": "100"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// member is one hand-driven classic group member with its own connection.
type member struct {
	cl                 *kgo.Client
	id                 string
	session, rebalance int32 // milliseconds
	metadata           string
	generation         int32
}

const testGroup = "g"

func newMember(t *testing.T, addr string, session, rebalance time.Duration) *member {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &member{cl: cl, session: int32(session.Milliseconds()), rebalance: int32(rebalance.Milliseconds()), metadata: "v1"}
}

// join sends one JoinGroup and returns its answer; a new member first
// learns its id (MEMBER_ID_REQUIRED) and joins again with it.
func (m *member) join(ctx context.Context) (*kmsg.JoinGroupResponse, error) {
	for {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.MemberID, req.ProtocolType = testGroup, m.id, "test"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = m.session, m.rebalance
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "p", []byte(m.metadata)
		req.Protocols = append(req.Protocols, p)
		resp, err := req.RequestWith(ctx, m.cl)
		if err != nil {
			return nil, err
		}
		if resp.ErrorCode == kerr.MemberIDRequired.Code {
			m.id = resp.MemberID
			continue
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return resp, err
		}
		m.generation = resp.Generation
		return resp, nil
	}
}

// sync sends SyncGroup; the leader assigns nothing to anyone.
func (m *member) sync(ctx context.Context, members []string) error {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.Generation = testGroup, m.id, m.generation
	req.ProtocolType, req.Protocol = kmsg.StringPtr("test"), kmsg.StringPtr("p")
	for _, id := range members {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = id, []byte("x")
		req.GroupAssignment = append(req.GroupAssignment, a)
	}
	resp, err := req.RequestWith(ctx, m.cl)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.ErrorCode)
}

func (m *member) joinAndSync(ctx context.Context) error {
	resp, err := m.join(ctx)
	if err != nil {
		return err
	}
	var ids []string
	for _, mm := range resp.Members {
		ids = append(ids, mm.MemberID)
	}
	return m.sync(ctx, ids)
}

// describe returns the group's state and member ids.
func describe(ctx context.Context, cl *kgo.Client) (string, map[string]bool, error) {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{testGroup}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return "", nil, err
	}
	g := resp.Groups[0]
	ids := map[string]bool{}
	for _, m := range g.Members {
		ids[m.MemberID] = true
	}
	return g.State, ids, kerr.ErrorForCode(g.ErrorCode)
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A live member waiting in JoinGroup for a slow (or dead) member outlasts its
// own session timeout: classic clients do not heartbeat while they wait, and
// Kafka counts the parked join as a heartbeat. Unpatched, the embedded broker
// expired it, dropped its join unanswered, and the client waited out its
// whole request timeout ("unable to join group session: i/o timeout").
func TestAMemberWaitingInJoinIsNotExpiredByItsSessionTimeout(t *testing.T) {
	addr := groupBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	slow := newMember(t, addr, 2*time.Second, 10*time.Second) // will stop answering
	live := newMember(t, addr, 300*time.Millisecond, 10*time.Second)
	if err := slow.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	// live joins and waits for slow to rejoin: the second generation has both.
	errs := make(chan error, 1)
	go func() { errs <- live.joinAndSync(ctx) }()
	waitFor(t, 5*time.Second, "the second member to wait in JoinGroup", func() (bool, error) {
		_, ids, err := describe(ctx, live.cl)
		return len(ids) == 2, err
	})
	if err := slow.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}

	// live asks for a rebalance (new metadata) and waits in JoinGroup; slow
	// never rejoins and leaves only by its 2 s session timeout, well after
	// live's 300 ms one.
	live.metadata = "v2"
	begin := time.Now()
	jctx, jcancel := context.WithTimeout(ctx, 6*time.Second)
	defer jcancel()
	resp, err := live.join(jctx)
	if err != nil {
		t.Fatalf("the waiting member's JoinGroup: %v after %v; want an answer once the silent member expires", err, time.Since(begin))
	}
	if resp.LeaderID != live.id || len(resp.Members) != 1 {
		t.Errorf("leader %q with %d members, want the waiting member leading itself alone", resp.LeaderID, len(resp.Members))
	}
	if took := time.Since(begin); took < time.Second {
		t.Errorf("answered after %v, before the silent member's 2 s session timeout", took)
	}
}

// A member whose JoinGroup answer could not be delivered (it crashed while
// waiting) leaves the group after its session timeout. Unpatched, such a
// member had no session timer at all and stayed, possibly as the leader
// every other member waits on, until the rebalance timeout (60 s by
// default). Several crash at once, since whether the broker notices the
// closed connection before it answers is up to a race.
func TestAMemberThatCrashedWaitingInJoinLeavesAfterItsSessionTimeout(t *testing.T) {
	addr := groupBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	watcher := newMember(t, addr, time.Second, time.Second)

	survivor := newMember(t, addr, 5*time.Second, 20*time.Second)
	if err := survivor.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	const crashed = 6
	var dead []*member
	for i := range crashed {
		m := newMember(t, addr, 400*time.Millisecond, 20*time.Second)
		go m.join(ctx) // parks: the survivor has not rejoined yet
		waitFor(t, 5*time.Second, fmt.Sprintf("member %d to wait in JoinGroup", i), func() (bool, error) {
			_, ids, err := describe(ctx, watcher.cl)
			return len(ids) == i+2, err
		})
		dead = append(dead, m)
	}
	for _, m := range dead {
		m.cl.Close()
	}
	time.Sleep(200 * time.Millisecond) // the broker sees the connections close

	// The survivor rejoins: the join completes with the crashed members in
	// it, their answers go nowhere, and the survivor (still the leader)
	// syncs alone.
	if err := survivor.joinAndSync(ctx); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	waitFor(t, 3*time.Second, "the crashed members to leave the group", func() (bool, error) {
		_, ids, err := describe(ctx, watcher.cl)
		for _, m := range dead {
			if ids[m.id] {
				return false, err
			}
		}
		return true, err
	})
	t.Logf("the crashed members left %v after the rebalance completed", time.Since(begin).Round(time.Millisecond))

	// And the survivor hears of it at its next heartbeat.
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = testGroup, survivor.id, survivor.generation
	resp, err := hb.RequestWith(ctx, survivor.cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); !errors.Is(err, kerr.RebalanceInProgress) {
		t.Errorf("heartbeat: %v, want REBALANCE_IN_PROGRESS", err)
	}
}

// ConsumerGroupDescribe (KIP-848) names each topic of a member's current
// and target assignment, as Kafka does (ConsumerGroupMember's
// topicPartitionsFromMap sets TopicId and TopicName): clients such as kadm
// and kafka-consumer-groups.sh read the name. Unpatched, the embedded
// broker gave the topic id alone, and kadm showed every member of a KIP-848
// group owning nothing.
func TestConsumerGroupDescribeNamesTheTopicsOfAnAssignment(t *testing.T) {
	ctx := context.Background()
	addr := groupBroker(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "t", 2, 1
	create.Topics = append(create.Topics, ct)
	if _, err := create.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}

	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.MemberEpoch = testGroup, "member-one-0000000000", 0
	hb.RebalanceTimeoutMillis, hb.SubscribedTopicNames, hb.Topics = 10000, []string{"t"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	hb.ServerAssignor = kmsg.StringPtr("uniform")
	resp, err := hb.RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 || resp.Assignment == nil {
		t.Fatalf("joining: %+v, %v", resp, err)
	}

	desc := kmsg.NewPtrConsumerGroupDescribeRequest()
	desc.Groups = []string{testGroup}
	dresp, err := desc.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	g := dresp.Groups[0]
	if g.ErrorCode != 0 || len(g.Members) != 1 {
		t.Fatalf("describe: error %d, %d members", g.ErrorCode, len(g.Members))
	}
	m := g.Members[0]
	for what, a := range map[string]kmsg.Assignment{"assignment": m.Assignment, "target assignment": m.TargetAssignment} {
		if len(a.TopicPartitions) != 1 {
			t.Errorf("the %s has %d topics, want 1", what, len(a.TopicPartitions))
			continue
		}
		if tp := a.TopicPartitions[0]; tp.Topic != "t" || len(tp.Partitions) != 2 {
			t.Errorf("the %s names topic %q (id %x) with partitions %v, want t with both", what, tp.Topic, tp.TopicID, tp.Partitions)
		}
	}
}

// A static member of a KIP-848 group that leaves for a while (member epoch
// -2, what a static client sends when it closes) keeps its partitions
// reserved until its session timeout, and no longer: Kafka leaves the
// session timer of a member that left so running
// (consumerGroupStaticMemberGroupLeave cancels none) and fences it when it
// fires. Unpatched, the embedded broker stopped the timer, and a static
// member that never came back held its partitions for ever.
func TestAStaticMemberThatLeftForAWhileIsFencedAfterItsSessionTimeout(t *testing.T) {
	ctx := context.Background()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"), kfake.BrokerConfigs(map[string]string{
		"group.consumer.session.timeout.ms": "500", "group.consumer.heartbeat.interval.ms": "100"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()[0]), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)

	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.MemberEpoch, hb.InstanceID = testGroup, "static-member-000000000", 0, kmsg.StringPtr("alice")
	hb.RebalanceTimeoutMillis, hb.SubscribedTopicNames, hb.Topics = 10000, []string{"t"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if resp, err := hb.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("joining: %+v, %v", resp, err)
	}
	leave := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	leave.Group, leave.MemberID, leave.MemberEpoch, leave.InstanceID = testGroup, hb.MemberID, -2, hb.InstanceID
	if resp, err := leave.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 || resp.MemberEpoch != -2 {
		t.Fatalf("leaving for a while: %+v, %v", resp, err)
	}

	members := func() (bool, error) {
		desc := kmsg.NewPtrConsumerGroupDescribeRequest()
		desc.Groups = []string{testGroup}
		resp, err := desc.RequestWith(ctx, cl)
		if err != nil {
			return false, err
		}
		return len(resp.Groups[0].Members) == 0, kerr.ErrorForCode(resp.Groups[0].ErrorCode)
	}
	if gone, err := members(); err != nil || gone {
		t.Fatalf("right after leaving for a while the member is gone (%v, %v): its partitions are no longer kept for it", gone, err)
	}
	waitFor(t, 3*time.Second, "the member that left for a while to be fenced after its 500 ms session", members)
}
