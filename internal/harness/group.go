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

	once    sync.Once
	cpu     time.Duration
	peakRSS float64
}

// SpawnGroup starts n consumers of group on topic, named group-1 ... group-n,
// configured as ChildEnv says with edit and extra.
func (p *Pipeline) SpawnGroup(topic, group string, n int, edit func(*config.Config), extra ...string) (*Group, error) {
	g := &Group{Name: group, Topic: topic, p: p}
	env := p.ChildEnv(func(c *config.Config) {
		c.Topic, c.Group = topic, group
		if edit != nil {
			edit(c)
		}
		g.brokers = c.Brokers
	}, extra...)
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("%s-%d", group, i)
		kid, err := p.Spawn(id, env, "consume", "--id", id)
		if err != nil {
			g.Stop()
			return nil, err
		}
		g.Kids = append(g.Kids, kid)
	}
	return g, nil
}

// FirstAssigned waits until the group's coordinator (on the brokers the
// members were given) has given a member partitions, and returns when it saw
// that (to within 10 ms).
func (g *Group) FirstAssigned(ctx context.Context, limit time.Duration) (time.Time, error) {
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
			for _, m := range v.Members {
				if len(m.Partitions) > 0 {
					return time.Now(), nil
				}
			}
		}
		if err := g.Exited(); err != nil {
			return time.Time{}, err
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no consumer of %s was assigned partitions within %v:\n%s", g.Name, limit, g.LogTail())
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
