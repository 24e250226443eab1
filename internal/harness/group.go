package harness

// A consumer group of `foodpipe consume` children, for measuring: each
// member's memory and CPU are its own.

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/kafka"
	"foodpipe/internal/wire"
)

// Group is `foodpipe consume` children of one group, reading one topic.
type Group struct {
	Name  string
	Topic string
	Kids  []*Process
	p     *Pipeline
	// brokers are the ones the members were given (edit may name others
	// than the pipeline's).
	brokers []string
	// env is the members' environment, for those started later.
	env []string

	once    sync.Once
	cpu     time.Duration
	peakRSS float64
}

// SpawnGroup starts n consumers of group on topic, named group-1 ... group-n,
// configured as ChildEnv says with edit and extra.
func (p *Pipeline) SpawnGroup(topic, group string, n int, edit func(*config.Config), extra ...string) (*Group, error) {
	g := &Group{Name: group, Topic: topic, p: p}
	g.env = p.ChildEnv(func(c *config.Config) {
		c.Topic, c.Group = topic, group
		if edit != nil {
			edit(c)
		}
		g.brokers = c.Brokers
	}, extra...)
	for range n {
		if _, err := g.Add(); err != nil {
			g.Stop()
			return nil, err
		}
	}
	return g, nil
}

// Add starts one member more, the next of group-1 ... group-n.
func (g *Group) Add() (*Process, error) {
	kid, err := g.spawn(len(g.Kids))
	if err != nil {
		return nil, err
	}
	g.Kids = append(g.Kids, kid)
	return kid, nil
}

// Restart starts member i (from 0) again under its id, once it has ended,
// as a supervisor restarts a crashed container: a static member coming
// back.
func (g *Group) Restart(i int) (*Process, error) {
	if !g.Kids[i].Ended() {
		return nil, fmt.Errorf("restart %s: %w", g.Kids[i].Name, ErrStillRunning)
	}
	kid, err := g.spawn(i)
	if err != nil {
		return nil, err
	}
	g.Kids[i] = kid
	return kid, nil
}

func (g *Group) spawn(i int) (*Process, error) {
	id := fmt.Sprintf("%s-%d", g.Name, i+1)
	return g.p.Spawn(id, g.env, "consume", "--id", id)
}

// FirstAssigned waits until the group's coordinator (on the brokers the
// members were given) has given a member partitions, and returns when it saw
// that (to within 10 ms).
func (g *Group) FirstAssigned(ctx context.Context, limit time.Duration) (time.Time, error) {
	return g.assigned(ctx, limit, 1)
}

// AllAssigned is FirstAssigned for n members: it waits until n members own
// partitions at once.
func (g *Group) AllAssigned(ctx context.Context, limit time.Duration, n int) (time.Time, error) {
	return g.assigned(ctx, limit, n)
}

func (g *Group) assigned(ctx context.Context, limit time.Duration, n int) (time.Time, error) {
	cfg := g.p.Config
	cfg.Brokers = g.brokers
	adm, closeAdm, err := wire.Admin(ctx, cfg, g.p.clientLog)
	if err != nil {
		return time.Time{}, err
	}
	defer closeAdm()
	deadline := time.Now().Add(limit)
	for {
		if v, err := kafka.InspectGroup(ctx, adm, g.Topic, g.Name); err == nil {
			owners := 0
			for _, m := range v.Members {
				if len(m.Partitions) > 0 {
					owners++
				}
			}
			if owners >= n {
				return time.Now(), nil
			}
		}
		if err := g.Exited(); err != nil {
			return time.Time{}, err
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("fewer than %d consumers of %s were assigned partitions within %v:\n%s", n, g.Name, limit, g.LogTail())
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Exited reports a member that stopped by itself.
func (g *Group) Exited() error {
	for _, k := range g.Kids {
		if k.Ended() {
			return fmt.Errorf("consumer %s exited: %w\n%s", k.Name, k.Err(), g.LogTail())
		}
	}
	return nil
}

// CPUSoFar is the members' CPU time so far, summed (see Process.CPUSoFar).
func (g *Group) CPUSoFar() time.Duration {
	var cpu time.Duration
	for _, k := range g.Kids {
		cpu += k.CPUSoFar()
	}
	return cpu
}

// Stop stops the members and returns their CPU time, summed, and the
// largest peak RSS. Calling it again returns the same.
func (g *Group) Stop() (cpu time.Duration, peakRSSMiB float64) {
	g.once.Do(func() {
		for _, k := range g.Kids {
			g.peakRSS = max(g.peakRSS, k.PeakRSSMiB())
			_ = k.Stop(10 * time.Second) // measured, not judged: a failure shows in what was stored
			g.cpu += k.CPU()
		}
	})
	return g.cpu, g.peakRSS
}

// LogTail is the end of each member's log, for a failure's report.
func (g *Group) LogTail() string {
	var s strings.Builder
	for _, k := range g.Kids {
		s.WriteString(k.LogTail(1500))
	}
	return s.String()
}
