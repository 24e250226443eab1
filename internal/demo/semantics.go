package demo

// `foodpipe demo --semantics`: the three delivery semantics side by side,
// each a group of one member on the same topic, the three members killed
// at their crash points and restarted, then what each group's table holds
// counted (package semantics).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/fault"
	"foodpipe/internal/harness"
	"foodpipe/internal/order"
	"foodpipe/internal/producer"
	"foodpipe/internal/semantics"
)

// ErrSemanticsHidden means a run of the semantics did not show what each
// semantics promises: at most once lost nothing, at least once doubled
// nothing, or the pipeline's own group lost or doubled an order.
var ErrSemanticsHidden = errors.New("the semantics did not show as they should")

// SemanticsOptions say what `demo --semantics` runs.
type SemanticsOptions struct {
	// Config is the configuration; the broker is an embedded one whatever
	// it names. Orders are produced at Config.ProducerRate.
	Config config.Config
	// UserDatabase and DBName are as in Options.
	UserDatabase bool
	DBName       string
	Orders       int
	// Wait bounds each wait: for the kills, and for every group to reach
	// the end of the topic once restarted.
	Wait time.Duration
	// Log is the demo's log; ClientLog the Kafka clients' (see
	// harness.Options). Each step is told on Log, at info.
	Log, ClientLog *slog.Logger
}

// Kill is a member killed at its crash point.
type Kill struct {
	Semantics  semantics.Semantics `json:"semantics"`
	Member     string              `json:"member"`
	CrashPoint string              `json:"crash_point"`
	At         time.Time           `json:"at"`
	// How is how the process ended ("signal: killed").
	How string `json:"how"`
}

// SemanticsSummary is what `demo --semantics` found.
type SemanticsSummary struct {
	// Produced are the orders the broker acknowledged.
	Produced int64 `json:"produced"`
	// Kills are the three members killed, in the order they died, and
	// Spread the time between the first and the last kill.
	Kills    []Kill  `json:"kills"`
	SpreadMS float64 `json:"spread_ms"`
	// Groups are each group's counts, from the weakest semantics.
	Groups   []semantics.Counts `json:"groups"`
	Database string             `json:"database"`
	Seconds  float64            `json:"seconds"`
}

// JudgeSemantics says whether each semantics showed what it promises: at
// most once lost at least one order, at least once stored at least one
// twice, and the pipeline's own group lost none and stored none twice,
// with each member killed at its crash point. The error wraps
// ErrSemanticsHidden.
func JudgeSemantics(s SemanticsSummary) error {
	var why []string
	if len(s.Kills) != len(semantics.All) {
		why = append(why, fmt.Sprintf("%d of %d members killed at their crash points", len(s.Kills), len(semantics.All)))
	}
	for _, c := range s.Groups {
		switch {
		case c.Produced != s.Produced:
			why = append(why, fmt.Sprintf("%s counted %d orders of %d produced", c.Semantics, c.Produced, s.Produced))
		case c.Semantics == semantics.AtMostOnce && c.Lost == 0:
			why = append(why, "at-most-once lost no order")
		case c.Semantics == semantics.AtLeastOnce && c.Twice == 0:
			why = append(why, "at-least-once stored no order twice")
		case c.Semantics == semantics.ExactlyOnce && (c.Lost > 0 || c.Twice > 0):
			why = append(why, fmt.Sprintf("exactly-once lost %d and stored %d twice", c.Lost, c.Twice))
		}
	}
	if len(why) > 0 {
		return fmt.Errorf("%w: %v", ErrSemanticsHidden, why)
	}
	return nil
}

// member is one group's member as a child process.
type member struct {
	sem  semantics.Semantics
	id   string
	proc *harness.Process
}

// Semantics runs the three groups side by side on one topic, one member
// each: the pipeline's own (`foodpipe consume`) and the two teaching ones
// (`foodpipe teach`), each started with its crash point armed once a tenth
// of the orders are on the topic, so that each is killed (SIGKILL) at its
// first batch, that backlog, between the two steps its semantics orders.
// Orders go on flowing; once the three are dead they are started
// again under the same ids, unarmed, and run until their groups reach the
// end of the topic; then each group's table is counted. An error means the
// run could not end; whether it showed the semantics is JudgeSemantics'.
func Semantics(ctx context.Context, o SemanticsOptions) (SemanticsSummary, error) {
	if o.Orders < 1 || o.Wait <= 0 {
		return SemanticsSummary{}, fmt.Errorf("semantics demo of %d orders, waiting %v: out of range", o.Orders, o.Wait)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	exited := make(chan harness.ProcessExited, 16)
	pl, err := harness.Start(ctx, harness.Options{Config: o.Config, UserDatabase: o.UserDatabase, DBName: o.DBName, Fresh: true,
		Log: log, ClientLog: o.ClientLog, Observe: func(e harness.Event) {
			if x, ok := e.(harness.ProcessExited); ok {
				select {
				case exited <- x:
				default: // more than the members' exits: none is waited for
				}
			}
		}})
	if err != nil {
		return SemanticsSummary{}, err
	}
	defer pl.Close()
	cfg := pl.Config

	// The producer's client makes the topics, so that every member finds
	// the topic when it joins.
	pcl, err := pl.ProducerClient(ctx, cfg, nil)
	if err != nil {
		return SemanticsSummary{}, err
	}
	defer pcl.Close()
	adm := kadm.NewClient(pcl)

	// Orders flow first, and the members join once a tenth of them are on
	// the topic: each one's first batch is that backlog, read by the three
	// at once, so that what a kill loses or doubles is more than one order.
	var mu sync.Mutex
	ids := make([]string, 0, o.Orders)
	backlog := make(chan struct{})
	p := producer.New(pcl, order.NewGenerator(uint64(start.UnixNano()), nil), producer.Config{Topic: cfg.Topic, Rate: cfg.ProducerRate, Count: o.Orders}, log)
	p.OnAck = func(ord order.Order, _ *kgo.Record) {
		mu.Lock()
		ids = append(ids, ord.OrderID)
		if len(ids) == max(1, o.Orders/10) {
			close(backlog)
		}
		mu.Unlock()
	}
	produced := make(chan error, 1)
	go func() { produced <- p.Run(ctx) }()
	select {
	case <-backlog:
	case err := <-produced:
		if err != nil {
			return SemanticsSummary{}, fmt.Errorf("produce: %w", err)
		}
		produced <- nil // every order is on the topic: the members meet them all at once
	case <-ctx.Done():
		return SemanticsSummary{}, ctx.Err()
	}

	members := make([]*member, len(semantics.All))
	groups := make([]string, len(semantics.All))
	for i, s := range semantics.All {
		members[i], groups[i] = &member{sem: s, id: string(s) + "-1"}, semantics.Group(s)
		if s == semantics.ExactlyOnce {
			groups[i] = cfg.Group
		}
		if members[i].proc, err = spawnMember(pl, members[i], true); err != nil {
			return SemanticsSummary{}, err
		}
	}
	log.Info("three groups on one topic, each member armed to be killed at its crash point", slog.String("topic", cfg.Topic))

	// Each member dies at its first batch: wait for the three.
	s := SemanticsSummary{Database: string(pl.DB.Source)}
	deadline := time.After(o.Wait)
	for len(s.Kills) < len(members) {
		select {
		case x := <-exited:
			i := slices.IndexFunc(members, func(m *member) bool { return m.id == x.Name })
			if i < 0 {
				continue
			}
			m := members[i]
			how := "exit 0"
			if x.Err != nil {
				how = x.Err.Error()
			}
			if how != "signal: killed" {
				return s, fmt.Errorf("%s ended (%s) but was not killed at %s:\n%s", m.id, how, semantics.CrashPoint(m.sem), m.proc.LogTail(2000))
			}
			s.Kills = append(s.Kills, Kill{Semantics: m.sem, Member: m.id, CrashPoint: semantics.CrashPoint(m.sem), At: x.At, How: how})
			log.Info("member killed at its crash point", slog.String("member", m.id), slog.String("crash_point", semantics.CrashPoint(m.sem)))
		case <-deadline:
			return s, fmt.Errorf("%d of %d members killed within %v: orders must flow for a member to reach its crash point", len(s.Kills), len(members), o.Wait)
		case <-ctx.Done():
			return s, ctx.Err()
		}
	}
	s.SpreadMS = ms(s.Kills[len(s.Kills)-1].At.Sub(s.Kills[0].At))

	// Started again under the same ids, they take their places back at
	// once (static membership), unarmed.
	for _, m := range members {
		if m.proc, err = spawnMember(pl, m, false); err != nil {
			return s, err
		}
	}
	log.Info("members restarted under the same ids")
	if err := <-produced; err != nil {
		return s, fmt.Errorf("produce: %w", err)
	}
	s.Produced = p.Stats().Acked
	if err := awaitEnd(ctx, adm, cfg.Topic, groups, o.Wait); err != nil {
		return s, err
	}
	// Stopped, a member finishes the batch in hand: the at-most-once one
	// has committed its last batch but may not have written it yet.
	var wg sync.WaitGroup
	stopped := make([]error, len(members))
	for i, m := range members {
		wg.Go(func() { stopped[i] = m.proc.Stop(10 * time.Second) })
	}
	wg.Wait()
	for i, err := range stopped {
		if err != nil {
			return s, fmt.Errorf("stop %s: %w", members[i].id, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if s.Groups, err = semantics.Count(ctx, pl.Store.Pool(), cfg.Group, ids); err != nil {
		return s, err
	}
	s.Seconds = time.Since(start).Seconds()
	return s, nil
}

// spawnMember starts m's process: `foodpipe consume` for the pipeline's own
// group, `foodpipe teach` for a teaching one; armed, with its crash point.
func spawnMember(pl *harness.Pipeline, m *member, armed bool) (*harness.Process, error) {
	// Unarmed says so, whatever this process's environment arms.
	extra := []string{fault.Env + "="}
	if armed {
		extra = []string{fault.Env + "=" + semantics.CrashPoint(m.sem)}
	}
	quiet := func(c *config.Config) { c.LogLevel = slog.LevelWarn }
	if m.sem == semantics.ExactlyOnce {
		return pl.SpawnConsumer(m.id, quiet, extra...)
	}
	return pl.Spawn(m.id, pl.ChildEnv(quiet, extra...), "teach", "--semantics", string(m.sem), "--id", m.id)
}

// awaitEnd waits until every group has committed the end of every
// partition of topic.
func awaitEnd(ctx context.Context, adm *kadm.Client, topic string, groups []string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		behind := []string{}
		for _, g := range groups {
			if err != nil {
				break
			}
			var committed kadm.OffsetResponses
			if committed, err = adm.FetchOffsets(ctx, g); err != nil {
				break
			}
			ends.Each(func(e kadm.ListedOffset) {
				c, ok := committed.Lookup(e.Topic, e.Partition)
				if !ok || c.At < e.Offset {
					behind = append(behind, fmt.Sprintf("%s[%d]", g, e.Partition))
				}
			})
		}
		if err == nil && len(behind) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("the groups' offsets on %s, after %v: %w", topic, limit, err)
			}
			return fmt.Errorf("the groups did not reach the end of %s within %v: behind %v", topic, limit, behind)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
