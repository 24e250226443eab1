package cli

// The consumers a bench drains with: `foodpipe consume` child processes of one group.

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// consumerGroup is `foodpipe consume` children of one group.
type consumerGroup struct {
	kids    []*child
	logs    []*childLog
	stopped bool
	cpu     time.Duration
	peakRSS float64
}

func (b *bench) startConsumers(ctx context.Context, topic, group string, n int) (*consumerGroup, error) {
	g := &consumerGroup{}
	env := append(b.childEnv, "KAFKA_TOPIC="+topic, "KAFKA_GROUP="+group)
	for i := 1; i <= n; i++ {
		l := &childLog{}
		kid, err := startChild(ctx, b.exe, env, l, "consume", "--id", fmt.Sprintf("%s-%d", group, i))
		if err != nil {
			g.stop()
			return nil, err
		}
		g.kids, g.logs = append(g.kids, kid), append(g.logs, l)
	}
	return g, nil
}

// firstAssigned waits for the first member of group to be given
// partitions, as the group's coordinator tells, and returns when it saw
// that (to within 10 ms).
func (b *bench) firstAssigned(ctx context.Context, g *consumerGroup, group string) (time.Time, error) {
	adm, closeAdm, err := adminClient(ctx, b.cfg, b.env.Log)
	if err != nil {
		return time.Time{}, err
	}
	defer closeAdm()
	deadline := time.Now().Add(time.Minute)
	for {
		described, err := adm.DescribeGroups(ctx, group)
		if err == nil {
			for _, m := range described[group].Members {
				if a, ok := m.Assigned.AsConsumer(); ok && len(a.Topics) > 0 && len(a.Topics[0].Partitions) > 0 {
					return time.Now(), nil
				}
			}
		}
		if err := g.exited(); err != nil {
			return time.Time{}, err
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("no consumer was assigned partitions within a minute:\n%s", g.logTail())
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// exited reports a consumer that stopped by itself.
func (g *consumerGroup) exited() error {
	for _, k := range g.kids {
		select {
		case <-k.done:
			return fmt.Errorf("a consumer exited: %w\n%s", k.err, g.logTail())
		default:
		}
	}
	return nil
}

// stop stops the consumers and returns their CPU time, summed, and the
// largest peak RSS.
func (g *consumerGroup) stop() (time.Duration, float64) {
	if g.stopped {
		return g.cpu, g.peakRSS
	}
	g.stopped = true
	for _, k := range g.kids {
		// The peak resident set is read while the process runs: the
		// kernel's maxrss of a child started by fork and exec also counts
		// the parent's pages from before the exec.
		g.peakRSS = max(g.peakRSS, procStatusMiB(k.cmd.Process.Pid, "VmHWM"))
		k.stop()
		if ps := k.cmd.ProcessState; ps != nil {
			g.cpu += ps.UserTime() + ps.SystemTime()
		}
	}
	return g.cpu, g.peakRSS
}

func (g *consumerGroup) logTail() string {
	var s strings.Builder
	for _, l := range g.logs {
		s.WriteString(tailString(l.String(), 1500))
	}
	return s.String()
}

// childLog keeps the last MiB or so of a consumer's log, for a failure's report.
type childLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *childLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 1<<20 {
		l.buf.Reset()
	}
	return l.buf.Write(p)
}

func (l *childLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
