package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/consumer"
	"foodpipe/internal/kafka"
)

// HeaderReplayedFrom marks a message re-published from the dead-letter topic
// with the dead letter's position, topic/partition/offset.
const HeaderReplayedFrom = "dlq.replayed_from"

// DeadLetter is one message of the dead-letter topic as `dlq list` shows it.
type DeadLetter struct {
	Partition       int32  `json:"partition"`
	Offset          int64  `json:"offset"`
	Reason          string `json:"reason"`
	Error           string `json:"error"`
	SourceTopic     string `json:"source_topic"`
	SourcePartition string `json:"source_partition"`
	SourceOffset    string `json:"source_offset"`
	FailedAt        string `json:"failed_at"`
	Key             string `json:"key"`
	Value           string `json:"value"`
	// ReplayedFrom is, for a dead letter that came from a replay, the
	// position of the dead letter that was replayed: the chain back to the
	// original.
	ReplayedFrom string `json:"replayed_from,omitempty"`
	// ReplayedAt is when this dead letter was replayed, if it was.
	ReplayedAt string `json:"replayed_at,omitempty"`
	// Truncated: the dead-letter topic holds a cut-down copy; StoredAs
	// names the dead_letters row that keeps the whole message.
	Truncated bool   `json:"truncated,omitempty"`
	StoredAs  string `json:"stored_as,omitempty"`

	rec *kgo.Record
}

// position names a dead letter: dlq-topic/partition/offset.
func (d DeadLetter) position() string {
	return fmt.Sprintf("%s/%d/%d", d.rec.Topic, d.Partition, d.Offset)
}

func runDLQ(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		return fmt.Errorf("%w: foodpipe dlq list|replay [flags]", ErrUsage)
	}
	f, err := newFlags(env, "dlq "+args[0])
	if err != nil {
		return err
	}
	f.kafkaFlags()
	f.bind("dlq-topic", "KAFKA_DLQ_TOPIC")
	reason := f.String("reason", "", "only dead letters with this reason, e.g. not_json")
	if args[0] == "list" {
		limit := f.Int("limit", 0, "show at most this many (0: all)")
		asJSON := f.Bool("json", false, "one JSON object per dead letter")
		cfg, err := f.parse(args[1:])
		if err != nil {
			return err
		}
		if *limit < 0 {
			return fmt.Errorf("%w: --limit must not be negative", ErrUsage)
		}
		return dlqList(ctx, env, cfg, *reason, *limit, *asJSON)
	}
	var offsets offsetList
	f.Var(&offsets, "offset", "replay the dead letter at this offset of the dead-letter topic (repeat or comma-separate)")
	all := f.Bool("all", false, "replay every dead letter")
	dry := f.Bool("dry-run", false, "show what would be replayed, publish nothing")
	cfg, err := f.parse(args[1:])
	if err != nil {
		return err
	}
	if *reason == "" && len(offsets) == 0 && !*all {
		return fmt.Errorf("%w: say which dead letters to replay: --reason R, --offset N or --all", ErrUsage)
	}
	return dlqReplay(ctx, env, cfg, *reason, offsets, *dry)
}

func dlqList(ctx context.Context, env *Env, cfg config.Config, reason string, limit int, asJSON bool) error {
	dead, err := readDeadLetters(ctx, cfg, env.Log)
	if err != nil {
		return err
	}
	replays, err := readReplays(ctx, cfg, env.Log)
	if err != nil {
		return err
	}
	for i := range dead {
		dead[i].ReplayedAt = replays[dead[i].position()]
	}
	dead = filterDead(dead, reason, nil)
	if limit > 0 && len(dead) > limit {
		dead = dead[:limit]
	}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		for _, d := range dead {
			if err := enc.Encode(d); err != nil {
				return err
			}
		}
		return nil
	}
	counts := map[string]int{}
	for _, d := range dead {
		counts[d.Reason]++
		fmt.Fprintf(env.Stdout, "%6d  %-22s  %s/%s@%s  %s  %s%s\n", d.Offset, safe(d.Reason),
			safe(d.SourceTopic), safe(d.SourcePartition), safe(d.SourceOffset), safe(d.FailedAt), preview(d.rec.Value, 60), safe(chain(d)))
	}
	fmt.Fprintf(env.Stdout, "%d dead letters", len(dead))
	for _, r := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(env.Stdout, "  %s=%d", safe(r), counts[r])
	}
	fmt.Fprintln(env.Stdout)
	return nil
}

// dlqReplay re-publishes chosen dead letters to the orders topic, once.
//
// Which dead letters were replayed is kept in a topic of its own,
// <dlq-topic>.replayed, one small message per replay keyed by the dead
// letter's position. It is read in full before replaying (it is as small as
// the replays), so a second replay of the same dead letter is skipped. Were
// the process to die between publishing and recording, the order would be
// published twice; the consumer then counts the second copy as a duplicate
// by order_id, so the table is still right.
func dlqReplay(ctx context.Context, env *Env, cfg config.Config, reason string, offsets offsetList, dry bool) error {
	dead, err := readDeadLetters(ctx, cfg, env.Log)
	if err != nil {
		return err
	}
	dead = filterDead(dead, reason, offsets)
	if len(dead) == 0 {
		fmt.Fprintln(env.Stdout, "no dead letters match")
		return nil
	}
	cl, err := newProducerClient(ctx, cfg, env.Log, nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	marks := markerTopic(cfg)
	if _, err := kafka.EnsureTopics(ctx, kadm.NewClient(cl), kafka.TopicSpec{
		Name: marks, Partitions: 1, ReplicationFactor: cfg.ReplicationFactor, Retention: cfg.Retention,
	}); err != nil && !errors.Is(err, kafka.ErrTopicDiffers) {
		return err
	}
	replayed, err := readReplays(ctx, cfg, env.Log)
	if err != nil {
		return err
	}
	var recs, markers []*kgo.Record
	skipped := 0
	for _, d := range dead {
		pos := d.position()
		if replayed[pos] != "" {
			skipped++
			fmt.Fprintf(env.Stdout, "skip    %s (%s): replayed before\n", pos, safe(d.Reason))
			continue
		}
		if d.ReplayedFrom != "" && len(offsets) == 0 {
			// Replaying it would only repeat the replay of the original
			// (unless the fix came since: then name it with --offset).
			skipped++
			fmt.Fprintf(env.Stdout, "skip    %s (%s): failed again after the replay of %s; name it with --offset to replay it again\n",
				pos, safe(d.Reason), safe(d.ReplayedFrom))
			continue
		}
		if d.Truncated {
			skipped++
			fmt.Fprintf(env.Stdout, "skip    %s (%s): a cut-down copy; the whole message is in the database as %s\n", pos, safe(d.Reason), safe(d.StoredAs))
			continue
		}
		headers := []kgo.RecordHeader{{Key: HeaderReplayedFrom, Value: []byte(pos)}}
		for _, h := range d.rec.Headers {
			if !strings.HasPrefix(h.Key, "dlq.") {
				headers = append(headers, h)
			}
		}
		recs = append(recs, &kgo.Record{Topic: cfg.Topic, Key: d.rec.Key, Value: d.rec.Value, Headers: headers})
		markers = append(markers, &kgo.Record{Topic: marks, Key: []byte(pos), Value: []byte(time.Now().UTC().Format(time.RFC3339))})
		verb := "replay "
		if dry {
			verb = "would replay "
		}
		fmt.Fprintf(env.Stdout, "%s%s (%s): %s\n", verb, pos, safe(d.Reason), preview(d.rec.Value, 60))
	}
	if dry || len(recs) == 0 {
		fmt.Fprintf(env.Stdout, "replayed 0, skipped %d\n", skipped)
		return nil
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("replay to %s: %w", cfg.Topic, err)
	}
	if err := cl.ProduceSync(ctx, markers...).FirstErr(); err != nil {
		return fmt.Errorf("record replays in %s: %w", marks, err)
	}
	fmt.Fprintf(env.Stdout, "replayed %d, skipped %d\n", len(recs), skipped)
	return nil
}

func markerTopic(cfg config.Config) string { return cfg.DLQTopic + ".replayed" }

// chain says where a dead letter stands in its replay chain.
func chain(d DeadLetter) string {
	var notes []string
	if d.ReplayedFrom != "" {
		notes = append(notes, "failed again after the replay of "+d.ReplayedFrom)
	}
	if d.ReplayedAt != "" {
		notes = append(notes, "replayed at "+d.ReplayedAt)
	}
	if d.Truncated {
		notes = append(notes, "cut down; whole in "+d.StoredAs)
	}
	if len(notes) == 0 {
		return ""
	}
	return "  [" + strings.Join(notes, "; ") + "]"
}

// readReplays returns the replayed dead letters by position, with when.
func readReplays(ctx context.Context, cfg config.Config, log *slog.Logger) (map[string]string, error) {
	done, err := readTopic(ctx, cfg, log, markerTopic(cfg))
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return map[string]string{}, nil // nothing was ever replayed
	}
	if err != nil {
		return nil, err
	}
	replayed := make(map[string]string, len(done))
	for _, r := range done {
		replayed[string(r.Key)] = string(r.Value)
	}
	return replayed, nil
}

func filterDead(dead []DeadLetter, reason string, offsets offsetList) []DeadLetter {
	var out []DeadLetter
	for _, d := range dead {
		if reason != "" && d.Reason != reason {
			continue
		}
		if len(offsets) > 0 && !slices.Contains(offsets, d.Offset) {
			continue
		}
		out = append(out, d)
	}
	return out
}

func readDeadLetters(ctx context.Context, cfg config.Config, log *slog.Logger) ([]DeadLetter, error) {
	recs, err := readTopic(ctx, cfg, log, cfg.DLQTopic)
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, 0, len(recs))
	for _, r := range recs {
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		out = append(out, DeadLetter{
			Partition: r.Partition, Offset: r.Offset, Reason: h[consumer.HeaderReason], Error: h[consumer.HeaderError],
			SourceTopic: h[consumer.HeaderSourceTopic], SourcePartition: h[consumer.HeaderSourcePartition],
			SourceOffset: h[consumer.HeaderSourceOffset], FailedAt: h[consumer.HeaderFailedAt],
			Key: string(r.Key), Value: string(r.Value), ReplayedFrom: h[HeaderReplayedFrom],
			Truncated: h[consumer.HeaderTruncated] == "true", StoredAs: h[consumer.HeaderStoredAs], rec: r,
		})
	}
	return out, nil
}

// readTopic reads a topic from its start to the end it has now, then stops:
// it never waits for messages that may come later.
func readTopic(ctx context.Context, cfg config.Config, log *slog.Logger, topic string) ([]*kgo.Record, error) {
	adm, closeAdm, err := adminClient(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer closeAdm()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("start offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{}
	from := map[int32]kgo.Offset{}
	var ferr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			ferr = fmt.Errorf("%s: %w", topic, o.Err)
			return
		}
		start := int64(0)
		if s, ok := starts.Lookup(topic, o.Partition); ok {
			start = s.Offset
		}
		if o.Offset > start {
			want[o.Partition] = o.Offset
			from[o.Partition] = kgo.NewOffset().At(start)
		}
	})
	if ferr != nil {
		return nil, ferr
	}
	if len(want) == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(append(kafka.ClientOpts(kafkaOptions(cfg, log)),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var recs []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset < end {
				recs = append(recs, r)
				if r.Offset+1 >= end {
					delete(want, r.Partition)
				}
			}
		})
	}
	slices.SortFunc(recs, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	return recs, nil
}

// preview shows the first n bytes of a value, quoted so that control
// characters and invalid UTF-8 stay visible.
func preview(b []byte, n int) string {
	more := ""
	if len(b) > n {
		b, more = b[:n], "…"
	}
	return strconv.Quote(string(b)) + more
}

// offsetList is a repeatable, comma-separated --offset flag.
type offsetList []int64

func (o *offsetList) String() string { return fmt.Sprint(*o) }

func (o *offsetList) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(part), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not an offset", part)
		}
		*o = append(*o, n)
	}
	return nil
}

var _ flag.Value = (*offsetList)(nil)
