package lab

// The second group: foodpipe analytics reads the same topic in a group of
// its own, at its own pace. The page shows its lag and members beside the
// orders group's, and the user can stop and start it to see that neither
// group waits for the other.

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/inspect"
)

// analyticsID is the analytics member's name (and static member id).
const analyticsID = "analytics-1"

// AnalyticsView is the analytics group as the page shows it.
type AnalyticsView struct {
	Group  string `json:"group"`
	State  string `json:"state"`
	Status string `json:"status"` // running, stopping, stopped
	Lag    int64  `json:"lag"`
	// Counted is how many orders the group has counted into its aggregates.
	Counted    int64                `json:"counted"`
	Partitions []AnalyticsPartition `json:"partitions"`
	Members    []AnalyticsMember    `json:"members"`
	Rebalances int                  `json:"rebalances"`
}

// AnalyticsPartition is one partition as the analytics group reads it.
type AnalyticsPartition struct {
	Partition int32 `json:"partition"`
	Committed int64 `json:"committed"`
	Lag       int64 `json:"lag"`
}

// AnalyticsMember is one member of the analytics group.
type AnalyticsMember struct {
	ID   string  `json:"id"`
	Owns []int32 `json:"owns"`
}

// analyticsState is what the lab keeps of the second group.
type analyticsState struct {
	proc   *harness.Process
	status string
	owned  map[string][]int32
	view   AnalyticsView
}

// analyticsSample is one reading of the second group.
type analyticsSample struct {
	view    inspect.Group
	viewErr error
	counted int64
	// owned is what the member says it owns on its /metrics, as the orders
	// group's members do (owners.go); answered is false when it was not
	// asked or did not answer.
	owned    claims
	answered bool
}

// StartAnalytics starts the analytics member, if it is not running.
func (l *Lab) StartAnalytics() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := &l.st.analytics
	if a.status == "running" || a.status == "stopping" {
		return fmt.Errorf("start analytics: %w", ErrAlreadyRunning)
	}
	addr, err := harness.FreeLoopback()
	if err != nil {
		return fmt.Errorf("start analytics: %w", err)
	}
	env := l.pl.ChildEnv(func(c *config.Config) {
		c.DatabaseURL, c.LogLevel, c.MetricsAddr = l.childDB, slog.LevelWarn, addr
	})
	p, err := l.pl.Spawn(analyticsID, env, "analytics", "--id", analyticsID)
	if err != nil {
		return fmt.Errorf("start analytics: %w", err)
	}
	a.proc, a.status = p, "running"
	l.st.event(time.Now(), "process", fmt.Sprintf("%s started (pid %d), group %s", analyticsID, p.Pid(), l.cfg.AnalyticsGroup))
	return nil
}

// StopAnalytics stops the analytics member (SIGTERM): its group's lag grows
// while the orders group goes on.
func (l *Lab) StopAnalytics() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := &l.st.analytics
	if a.status != "running" {
		return fmt.Errorf("stop analytics: %w", ErrNoSuchConsumer)
	}
	a.status = "stopping"
	p := a.proc
	go func() { _ = p.Stop(10 * time.Second) }() // its end comes as a ProcessExited event
	return nil
}

// analyticsExited notes the member's end. Call with l.mu held.
func (l *Lab) analyticsExited(name string) bool {
	a := &l.st.analytics
	if name != analyticsID || a.proc == nil {
		return false
	}
	a.status, a.proc = "stopped", nil
	return true
}

// sampleAnalytics reads the second group, what its member p (nil when it
// is not running) says it owns, and what it counted.
func (l *Lab) sampleAnalytics(ctx context.Context, p *harness.Process) analyticsSample {
	var s analyticsSample
	if p != nil {
		if fams, err := p.Metrics(ctx); err == nil {
			s.owned, s.answered = ownedOf(fams), true
		}
	}
	s.view, s.viewErr = inspect.Read(ctx, inspect.Source{Admin: l.adm}, l.cfg.Topic, l.cfg.AnalyticsGroup)
	if n, err := l.pl.Store.Analytics().Counted(ctx, l.cfg.AnalyticsGroup); err == nil {
		s.counted = n
	}
	return s
}

// foldAnalytics takes a reading into the state: the view, and each change
// of ownership as a rebalance of the second group. What the member owns is
// its own word, as for the orders group: the coordinator describes no
// assignment while the group rebalances. Call with l.mu held.
func (l *Lab) foldAnalytics(at time.Time, s analyticsSample) {
	a := &l.st.analytics
	if a.status == "" {
		a.status = "stopped"
	}
	v := AnalyticsView{Group: l.cfg.AnalyticsGroup, Status: a.status, Counted: s.counted,
		Partitions: []AnalyticsPartition{}, Members: []AnalyticsMember{}, Rebalances: a.view.Rebalances}
	if s.viewErr != nil {
		v.State, v.Lag, v.Partitions, v.Members = a.view.State, a.view.Lag, a.view.Partitions, a.view.Members
		a.view = v
		return
	}
	v.State = s.view.State
	for _, p := range s.view.Partitions {
		v.Lag += p.CommittedLag
		v.Partitions = append(v.Partitions, AnalyticsPartition{Partition: p.Partition, Committed: p.Committed, Lag: p.CommittedLag})
	}
	owned := map[string][]int32{}
	switch {
	case s.answered:
		owned[analyticsID] = append([]int32{}, slices.Sorted(maps.Keys(s.owned))...)
	case a.status == "running" || a.status == "stopping":
		owned = a.owned // not answering this time: as it last said
	}
	for _, id := range slices.Sorted(maps.Keys(owned)) {
		v.Members = append(v.Members, AnalyticsMember{ID: id, Owns: slices.Clone(owned[id])})
	}
	if a.owned != nil && fmt.Sprint(owned) != fmt.Sprint(a.owned) {
		v.Rebalances++
		l.st.event(at, "rebalance", fmt.Sprintf("group %s: %s (the orders group is not affected)", l.cfg.AnalyticsGroup, ownership(owned)))
	}
	a.owned = owned
	a.view = v
}

// ownership says who owns what, "nobody" for an empty group.
func ownership(owned map[string][]int32) string {
	if len(owned) == 0 {
		return "no member owns a partition"
	}
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(owned)) {
		parts = append(parts, fmt.Sprintf("%s owns %v", id, owned[id]))
	}
	return strings.Join(parts, ", ")
}
