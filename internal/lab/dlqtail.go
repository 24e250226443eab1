package lab

// The dead-letter topic as the page lists it, read as it grows, and the
// replay of one letter with the replay-once protocol of package dlq.

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
	"foodpipe/internal/dlq"
	"foodpipe/internal/kafka"
	"foodpipe/internal/wire"
)

// Letter is one dead letter as the page lists it.
type Letter struct {
	Offset          int64  `json:"offset"`
	Reason          string `json:"reason"`
	Error           string `json:"error"`
	SourcePartition string `json:"source_partition"`
	SourceOffset    string `json:"source_offset"`
	FailedAt        string `json:"failed_at"`
	Preview         string `json:"preview"`
	ReplayedAt      string `json:"replayed_at,omitempty"`
	ReplayedFrom    string `json:"replayed_from,omitempty"`
	// Replayable: a click would replay it; WhyNot says why not otherwise.
	Replayable bool   `json:"replayable"`
	WhyNot     string `json:"why_not,omitempty"`
}

// dlqTail reads the dead-letter topic and its replay markers from the
// start, and keeps reading as they grow.
type dlqTail struct {
	cl       *kgo.Client
	topic    string
	marks    string
	done     chan struct{}
	mu       sync.Mutex
	all      []dlq.Letter
	replayed map[string]string // position -> when
	// replaying guards replay-once between a replay and its marker coming
	// back through the topic.
	replaying sync.Mutex
}

func startDLQTail(ctx context.Context, cfg config.Config, log *slog.Logger) (*dlqTail, error) {
	t := &dlqTail{topic: cfg.DLQTopic, marks: dlq.MarkerTopic(cfg.DLQTopic), done: make(chan struct{}), replayed: map[string]string{}}
	opts := append(kafka.ClientOpts(wire.KafkaOptions(cfg, log)),
		kgo.ConsumeTopics(t.topic, t.marks), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("dead-letter reader: %w", err)
	}
	// The marker topic is made before anything is replayed, as `foodpipe
	// dlq replay` makes it, so the reader finds it from the start.
	if _, err := kafka.EnsureTopics(ctx, kadm.NewClient(cl), kafka.TopicSpec{
		Name: t.marks, Partitions: 1, ReplicationFactor: cfg.ReplicationFactor, Retention: cfg.Retention,
	}); err != nil && !errors.Is(err, kafka.ErrTopicDiffers) {
		cl.Close()
		return nil, err
	}
	t.cl = cl
	go t.run(ctx)
	return t, nil
}

func (t *dlqTail) run(ctx context.Context) {
	defer close(t.done)
	for ctx.Err() == nil {
		fs := t.cl.PollFetches(ctx)
		// Fetch errors (a broker restarting) are retried by the client;
		// the next poll goes on where this one stopped.
		fs.EachRecord(func(r *kgo.Record) {
			t.mu.Lock()
			if r.Topic == t.marks {
				t.replayed[string(r.Key)] = string(r.Value)
			} else {
				t.all = append(t.all, dlq.Decode(r))
			}
			t.mu.Unlock()
		})
	}
}

func (t *dlqTail) close() {
	t.cl.Close()
	<-t.done
}

// letters returns the latest letters, newest first, and how many there are.
func (t *dlqTail) letters() ([]Letter, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	from := max(0, len(t.all)-deadShown)
	out := make([]Letter, 0, len(t.all)-from)
	plan := dlq.Plan(t.all[from:], t.replayed, true)
	for i := len(plan) - 1; i >= 0; i-- {
		d := plan[i]
		l := d.Letter
		out = append(out, Letter{Offset: l.Offset, Reason: l.Reason, Error: l.Error, SourcePartition: l.SourcePartition,
			SourceOffset: l.SourceOffset, FailedAt: l.FailedAt, Preview: dlq.Preview(l.Record.Value, 120),
			ReplayedAt: t.replayed[l.Position()], ReplayedFrom: l.ReplayedFrom, Replayable: d.Replay, WhyNot: d.Why})
	}
	return out, len(t.all)
}

// replay re-publishes the dead letter at offset to the orders topic once,
// through send (which counts it as produced), then records the replay.
func (t *dlqTail) replay(ctx context.Context, offset int64, ordersTopic string, send func(*kgo.Record) error) error {
	t.replaying.Lock()
	defer t.replaying.Unlock()
	t.mu.Lock()
	i := slices.IndexFunc(t.all, func(l dlq.Letter) bool { return l.Offset == offset })
	if i < 0 {
		t.mu.Unlock()
		return fmt.Errorf("replay: %w: %d", ErrNoLetter, offset)
	}
	d := dlq.Plan(t.all[i:i+1], t.replayed, true)[0]
	t.mu.Unlock()
	if !d.Replay {
		return fmt.Errorf("replay %s: %w: %s", d.Letter.Position(), ErrNotReplayable, d.Why)
	}
	if err := send(dlq.ReplayRecord(d.Letter, ordersTopic)); err != nil {
		return fmt.Errorf("replay %s: %w", d.Letter.Position(), err)
	}
	now := time.Now()
	t.mu.Lock()
	t.replayed[d.Letter.Position()] = now.UTC().Format(time.RFC3339)
	t.mu.Unlock()
	if err := t.cl.ProduceSync(ctx, dlq.MarkerRecord(d.Letter, t.marks, now)).FirstErr(); err != nil {
		return fmt.Errorf("record the replay of %s: %w", d.Letter.Position(), err)
	}
	return nil
}
