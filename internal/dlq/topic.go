package dlq

// Reading the dead-letter topic and replaying from it, for `foodpipe dlq`
// and the lab.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/kafka"
)

// Reader reads the dead-letter topic and its replay markers.
type Reader struct {
	// Base are the client options reads start from (kafka.ClientOpts).
	Base  []kgo.Opt
	Admin *kadm.Client
	Topic string // the dead-letter topic
}

// Letters returns every dead letter the topic keeps, oldest first, each
// with when it was replayed, if it was.
func (r Reader) Letters(ctx context.Context) ([]Letter, error) {
	recs, err := kafka.ReadTopic(ctx, r.Base, r.Admin, r.Topic)
	if err != nil {
		return nil, err
	}
	replays, err := r.Replayed(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Letter, len(recs))
	for i, rec := range recs {
		out[i] = Decode(rec)
		out[i].ReplayedAt = replays[out[i].Position()]
	}
	return out, nil
}

// Replayed returns the positions of the dead letters replayed so far, with when.
func (r Reader) Replayed(ctx context.Context) (map[string]string, error) {
	done, err := kafka.ReadTopic(ctx, r.Base, r.Admin, MarkerTopic(r.Topic))
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return map[string]string{}, nil // nothing was ever replayed
	}
	if err != nil {
		return nil, err
	}
	replayed := make(map[string]string, len(done))
	for _, rec := range done {
		replayed[string(rec.Key)] = string(rec.Value)
	}
	return replayed, nil
}

// Replay re-publishes to ordersTopic the chosen letters that Plan allows,
// then records each replay in the marker topic (made like markerSpec, whose
// name is set here). byName is Plan's. With dry set it only plans.
func (r Reader) Replay(ctx context.Context, cl *kgo.Client, ordersTopic string, chosen []Letter, byName, dry bool,
	markerSpec kafka.TopicSpec) ([]Decision, error) {
	markerSpec.Name, markerSpec.Partitions = MarkerTopic(r.Topic), 1
	if _, err := kafka.EnsureTopics(ctx, r.Admin, markerSpec); err != nil && !errors.Is(err, kafka.ErrTopicDiffers) {
		return nil, err
	}
	replayed, err := r.Replayed(ctx)
	if err != nil {
		return nil, err
	}
	plan := Plan(chosen, replayed, byName)
	if dry {
		return plan, nil
	}
	var recs, markers []*kgo.Record
	now := time.Now()
	for _, d := range plan {
		if d.Replay {
			recs = append(recs, ReplayRecord(d.Letter, ordersTopic))
			markers = append(markers, MarkerRecord(d.Letter, markerSpec.Name, now))
		}
	}
	if len(recs) == 0 {
		return plan, nil
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, fmt.Errorf("replay to %s: %w", ordersTopic, err)
	}
	if err := cl.ProduceSync(ctx, markers...).FirstErr(); err != nil {
		return nil, fmt.Errorf("record replays in %s: %w", markerSpec.Name, err)
	}
	return plan, nil
}
