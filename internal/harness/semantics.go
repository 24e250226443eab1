package harness

// The three delivery semantics' members as children (package semantics):
// started, held at their crash points, killed at one instant, and their
// groups awaited. `demo --semantics` and the lab both do it this way.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"foodpipe/internal/config"
	"foodpipe/internal/fault"
	"foodpipe/internal/inspect"
	"foodpipe/internal/semantics"
)

// SpawnSemantics starts id, a member of s's group: `foodpipe consume` in
// the pipeline's own group for semantics.ExactlyOnce, `foodpipe teach`
// otherwise. held arms s's crash point to hold the member there
// (fault.Hold): at its next batch it stops itself between the two steps its
// semantics orders, and waits for KillAtOnce. Not held, it is unarmed,
// whatever this process's environment arms. It logs warnings and worse;
// edit, when not nil, changes its Config after that.
func (p *Pipeline) SpawnSemantics(s semantics.Semantics, id string, held bool, edit func(*config.Config)) (*Process, error) {
	arm := fault.Env + "="
	if held {
		arm += fault.Hold(semantics.CrashPoint(s))
	}
	conf := func(c *config.Config) {
		c.LogLevel = slog.LevelWarn
		if edit != nil {
			edit(c)
		}
	}
	if s == semantics.ExactlyOnce {
		return p.SpawnConsumer(id, conf, arm)
	}
	return p.Spawn(id, p.ChildEnv(conf, arm), "teach", "--semantics", string(s), "--id", id)
}

// Stopped reports whether the process is stopped (its state is T in
// /proc): held at a fault point, frozen, or sent SIGSTOP.
func (p *Process) Stopped() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		return false
	}
	// The state is the field after the command name, which may hold
	// spaces: it follows the name's closing parenthesis.
	i := strings.LastIndex(string(b), ") ")
	return i >= 0 && i+2 < len(b) && b[i+2] == 'T'
}

// AwaitHeld waits until every one of procs is held at its crash point
// (SpawnSemantics with held): stopped by itself, mid-batch. One that ends
// first, or the limit passing, is an error naming who, with the end of its
// log.
func AwaitHeld(ctx context.Context, procs []*Process, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var waiting []string
		for _, p := range procs {
			if p.Ended() {
				return fmt.Errorf("%s ended (%w) before it reached its crash point:\n%s", p.Name, p.Err(), p.LogTail(2000))
			}
			if !p.Stopped() {
				waiting = append(waiting, p.Name)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%v not at their crash points within %v: a member reaches it only with a batch in hand, so orders must flow", waiting, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// KillAtOnce sends SIGKILL to every one of procs, one right after the
// other, and waits for each to end. at are the instants each was sent.
func KillAtOnce(procs []*Process) (at []time.Time, err error) {
	at = make([]time.Time, len(procs))
	var errs []error
	for i, p := range procs {
		at[i] = time.Now()
		errs = append(errs, p.Signal(syscall.SIGKILL))
	}
	for _, p := range procs {
		<-p.Done()
	}
	return at, errors.Join(errs...)
}

// EndOffsets are topic's partitions' end offsets (high watermarks) now.
func EndOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// AwaitRead waits until every one of groups has read, on each partition
// of topic, at least to the offset to names (with to nil, the end offset at
// each look: the end of the topic). A group has read what its next member
// starts after (inspect.Partition.Position): Kafka's committed offset, or
// the offset PostgreSQL stores with the pipeline's group's orders when it
// is ahead (a member killed before its Kafka commit leaves Kafka's behind
// until its next batch).
func (p *Pipeline) AwaitRead(ctx context.Context, adm *kadm.Client, topic string, groups []string, to map[int32]int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		behind, err := p.behind(ctx, adm, topic, groups, to)
		if err == nil && len(behind) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("the groups' offsets on %s, after %v: %w", topic, limit, err)
			}
			return fmt.Errorf("the groups did not read as far on %s within %v: behind %v", topic, limit, behind)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// behind names each group's partitions read short of to (or of the end).
func (p *Pipeline) behind(ctx context.Context, adm *kadm.Client, topic string, groups []string, to map[int32]int64) ([]string, error) {
	var behind []string
	for _, g := range groups {
		v, err := inspect.Read(ctx, inspect.Source{Admin: adm, Store: p.Store}, topic, g)
		if err != nil {
			return nil, err
		}
		if v.DBErr != nil {
			return nil, v.DBErr
		}
		for _, ps := range v.Partitions {
			want, ok := to[ps.Partition]
			if to == nil {
				want, ok = ps.HighWatermark, true
			}
			if ok && want > 0 && ps.Position() < want {
				behind = append(behind, fmt.Sprintf("%s[%d]", g, ps.Partition))
			}
		}
	}
	return behind, nil
}
