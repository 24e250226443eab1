package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"foodpipe/internal/config"
	"foodpipe/internal/telemetry"
)

// assign records partitions added to or taken from this member and reports
// whether that changed what it owns; only a change is observed.
func (c *Consumer) assign(parts []int32, add, lost bool) bool {
	c.mu.Lock()
	changed := false
	now := time.Now()
	for _, p := range parts {
		if c.owned[p] == add {
			continue
		}
		changed = true
		if add {
			c.owned[p] = true
			c.cfg.Metrics.PartitionOwned.WithLabelValues(telemetry.Partition(p)).Set(float64(now.UnixMicro()) / 1e6)
		} else {
			delete(c.owned, p)
			c.cfg.Metrics.ConsumerLag.DeleteLabelValues(telemetry.Partition(p))
			c.cfg.Metrics.PartitionOwned.DeleteLabelValues(telemetry.Partition(p))
		}
	}
	owned := c.assignedLocked()
	c.mu.Unlock()
	if changed {
		c.observe(Assigned{Member: c.cfg.ID, At: now, Owned: owned, Lost: lost})
	}
	return changed
}

// Assigned returns the partitions this member owns now, in order.
func (c *Consumer) Assigned() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.assignedLocked()
}

func (c *Consumer) assignedLocked() []int32 {
	out := make([]int32, 0, len(c.owned))
	for p := range c.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// groupOptions are the group settings a consumer's client adds to the base options.
func (c *Consumer) groupOptions() []kgo.Opt {
	cfg, log, m := c.cfg, c.log, c.cfg.Metrics
	opts := []kgo.Opt{
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
		// A new group starts from the beginning of the topic: no order that
		// was produced before the first consumer started is skipped.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Offsets are committed by hand, after the database commit.
		kgo.DisableAutoCommit(),
		// No rebalance can take a partition away while a polled batch is
		// being written: the batch is finished and committed first, so two
		// members never write the same partition at once.
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(cfg.FetchMaxWait),
		kgo.FetchMinBytes(cfg.FetchMinBytes),
		// Only committed transactions are read (Kafka's isolation.level
		// read_committed): an order a transactional producer aborted never
		// happened, and one in a transaction still open may yet be aborted,
		// so the partition waits at its last stable offset until the
		// transaction ends. Records of other producers are read at once.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// A transaction's commit or abort marker takes an offset of its own,
		// the last of its partition until more is written. Dropped, as the
		// client does by default, the member's last commit would be the
		// marker's offset, and Kafka would count the marker as lag for ever
		// (status, the exporter, the no-progress alert). Kept, each marker
		// is committed past once what came before it is stored (markers),
		// never processed.
		kgo.KeepControlRecords(),
		// A killed consumer sends no LeaveGroup; the coordinator notices it
		// is gone only when its heartbeats stop for the session timeout, and
		// its partitions wait that long. Heartbeats run on their own
		// goroutine, so a short timeout does not misfire on slow batches.
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(cfg.SessionTimeout / 3),
		// A rebalance waits this long for a live member to finish its
		// batch and rejoin; then the coordinator drops it and hands its
		// partitions to the others. A member stuck on its database (cut
		// off, or frozen) holds its partitions no longer than this, and
		// when it wakes the offset fence refuses its batch.
		kgo.RebalanceTimeout(RebalanceTimeout),
		kgo.AdjustFetchOffsetsFn(func(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
			return c.adjustOffsets(ctx, offsets)
		}),
		// franz-go calls these callbacks on every round of a rebalance, also
		// with no partitions of this member in it (the cooperative protocol
		// takes two rounds: revoke what moves, then assign it). Only a round
		// that changes what this member owns is logged and counted, so one
		// rebalance reads as one line per member it touched.
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
			if c.assign(parts[cfg.Topic], true, false) {
				m.Rebalances.Inc()
				log.Info("partitions assigned", slog.Any("partitions", parts[cfg.Topic]), slog.Any("owned", c.Assigned()))
			}
		}),
		// Revoked: a rebalance moves partitions to other members. Lost: this
		// member was dropped from the group (it missed its session timeout).
		// Either way, with BlockRebalanceOnPoll, no batch of those partitions
		// is in flight here any more.
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
			// What was stored of them is committed before they go: their
			// next owner's position is the database's either way, but
			// Kafka's committed offset is what status and lag show.
			if c.group.Load() == cl {
				c.commitWithin(ctx, cl, parts[cfg.Topic], closeWait)
			}
			c.forget(parts[cfg.Topic])
			if c.assign(parts[cfg.Topic], false, false) {
				m.Rebalances.Inc()
				log.Info("partitions revoked", slog.Any("partitions", parts[cfg.Topic]), slog.Any("owned", c.Assigned()))
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
			c.commits.take(parts[cfg.Topic]) // no longer this member's to commit
			c.forget(parts[cfg.Topic])
			if c.assign(parts[cfg.Topic], false, true) {
				m.Rebalances.Inc()
				log.Warn("partitions lost", slog.Any("partitions", parts[cfg.Topic]), slog.Any("owned", c.Assigned()))
			}
		}),
	}
	if cfg.GroupProtocol == config.GroupProtocolConsumer {
		// KIP-848: the broker computes the assignment with its "uniform"
		// assignor, which the client's default cooperative-sticky
		// balancer names, and tells each member its part in the answer to
		// a heartbeat. A member that comes or goes stops only the
		// partitions that move. The broker's group config sets the
		// session timeout and heartbeat interval: the two options above
		// are the classic protocol's and go unused.
		opts = append(opts, kgo.ServerSideBalancer())
	}
	if cfg.ClientID != "" {
		opts = append(opts, kgo.ClientID(cfg.ClientID))
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	return opts
}

// leaveStatic takes a static member out of the group when it stops on
// purpose. A static member's client does not leave on close, so that a
// restart slips back in without a rebalance; a consumer that is stopped
// should hand its partitions over at once instead, as a dynamic one does.
//
// Under the classic protocol that is a LeaveGroup naming the instance id.
// Under KIP-848 the client's close was a heartbeat with epoch -2, a static
// member's "back soon": the broker keeps its partitions for it until its
// session times out. A heartbeat with epoch -1 from the same member id is
// KIP-848's leave for good, and the broker assigns the partitions at once.
// memberID is the id the client had in the group ("" when it never joined).
func (c *Consumer) leaveStatic(memberID string) {
	if c.cfg.InstanceID == "" {
		return
	}
	// Through the dead-letter publisher's client, which is connected
	// already: a new client would dial and look the cluster up first, which
	// on a busy machine can take most of an orchestrator's stop grace.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	if c.cfg.GroupProtocol == config.GroupProtocolConsumer {
		err = leave848(ctx, c.pub, c.cfg.Group, memberID, c.cfg.InstanceID)
	} else {
		var res kadm.LeaveGroupResponses
		res, err = kadm.NewClient(c.pub).LeaveGroup(ctx, kadm.LeaveGroup(c.cfg.Group).InstanceIDs(c.cfg.InstanceID).Reason("consumer stopped"))
		if err == nil {
			err = res.Error()
		}
	}
	if err != nil {
		c.log.Warn("leaving the group failed; the partitions move after the session timeout", slog.Any("err", err))
	}
}

// leave848 sends KIP-848's leave for good (member epoch -1) for the static
// member memberID of group. A member the group no longer has (its session
// ended first, or it never joined) has nothing left to leave.
func leave848(ctx context.Context, cl *kgo.Client, group, memberID, instanceID string) error {
	if memberID == "" {
		return nil
	}
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = group, memberID, -1
	req.InstanceID = kmsg.StringPtr(instanceID)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	err = kerr.ErrorForCode(resp.ErrorCode)
	if errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.GroupIDNotFound) {
		return nil
	}
	if err != nil && resp.ErrorMessage != nil {
		return fmt.Errorf("%w: %s", err, *resp.ErrorMessage)
	}
	return err
}
