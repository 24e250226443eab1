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
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/harness"
	"foodpipe/internal/order"
	"foodpipe/internal/producer"
	"foodpipe/internal/semantics"
	"foodpipe/internal/wire"
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
	// Kills are the three members killed, in All's order, and
	// Spread the time between the first SIGKILL sent and the last.
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

// Semantics runs the three groups side by side on one topic, one member
// each: the pipeline's own (`foodpipe consume`) and the two teaching ones
// (`foodpipe teach`), each started once a tenth of the orders are on the
// topic and held at its crash point (harness.SpawnSemantics), so that each
// stops at its first batch, that backlog, between the two steps its
// semantics orders. Once the three are held they are killed (SIGKILL) at
// one instant (harness.KillAtOnce). Orders go on flowing; the members are
// started again under the same ids, unarmed, and run until their groups
// reach the end of the topic; then each group's table is counted. An error
// means the run could not end; whether it showed the semantics is
// JudgeSemantics'.
func Semantics(ctx context.Context, o SemanticsOptions) (SemanticsSummary, error) {
	if o.Orders < 1 || o.Wait <= 0 {
		return SemanticsSummary{}, fmt.Errorf("semantics demo of %d orders, waiting %v: out of range", o.Orders, o.Wait)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	pl, err := harness.Start(ctx, harness.Options{Config: o.Config, UserDatabase: o.UserDatabase, DBName: o.DBName, Fresh: true,
		Log: log, ClientLog: o.ClientLog})
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
	p := producer.New(pcl, order.NewGenerator(uint64(start.UnixNano()), nil), producer.Config{Topic: cfg.Topic, Rate: cfg.ProducerRate, Count: o.Orders,
		Linger: wire.Linger(cfg)}, log)
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

	members := make([]string, len(semantics.All))
	procs := make([]*harness.Process, len(semantics.All))
	for i, sem := range semantics.All {
		members[i] = string(sem) + "-1"
		if procs[i], err = pl.SpawnSemantics(sem, members[i], true, nil); err != nil {
			return SemanticsSummary{}, err
		}
	}
	log.Info("three groups on one topic, each member armed to be held at its crash point", slog.String("topic", cfg.Topic))

	// Each member stops at its first batch; the three are killed together.
	s := SemanticsSummary{Database: string(pl.DB.Source)}
	if err := harness.AwaitHeld(ctx, procs, o.Wait); err != nil {
		return s, err
	}
	at, err := harness.KillAtOnce(procs)
	if err != nil {
		return s, err
	}
	for i, sem := range semantics.All {
		how := "exit 0"
		if err := procs[i].Err(); err != nil {
			how = err.Error()
		}
		s.Kills = append(s.Kills, Kill{Semantics: sem, Member: members[i], CrashPoint: semantics.CrashPoint(sem), At: at[i], How: how})
		log.Info("member killed at its crash point", slog.String("member", members[i]), slog.String("crash_point", semantics.CrashPoint(sem)))
	}
	s.SpreadMS = ms(at[len(at)-1].Sub(at[0]))

	// Started again under the same ids, they take their places back at
	// once (static membership), unarmed.
	for i, sem := range semantics.All {
		if procs[i], err = pl.SpawnSemantics(sem, members[i], false, nil); err != nil {
			return s, err
		}
	}
	log.Info("members restarted under the same ids")
	if err := <-produced; err != nil {
		return s, fmt.Errorf("produce: %w", err)
	}
	s.Produced = p.Stats().Acked
	if err := pl.AwaitRead(ctx, adm, cfg.Topic, semantics.Groups(cfg.Group), nil, o.Wait); err != nil {
		return s, err
	}
	// Stopped, a member finishes the batch in hand: the at-most-once one
	// has committed its last batch but may not have written it yet.
	var wg sync.WaitGroup
	stopped := make([]error, len(procs))
	for i, proc := range procs {
		wg.Go(func() { stopped[i] = proc.Stop(10 * time.Second) })
	}
	wg.Wait()
	for i, err := range stopped {
		if err != nil {
			return s, fmt.Errorf("stop %s: %w", members[i], err)
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
