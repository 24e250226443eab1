package kafka

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicSpec is how foodpipe wants a topic to look.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	// Retention is retention.ms; zero leaves the broker default.
	Retention time.Duration
}

// TopicState says what EnsureTopics found or did.
type TopicState string

const (
	TopicCreated TopicState = "created"
	TopicExists  TopicState = "exists"
	// TopicDiffers means the topic exists with other settings than asked.
	// foodpipe never alters an existing topic by itself: partitions cannot be
	// taken away, and adding some moves customers to other partitions.
	TopicDiffers TopicState = "differs"
)

// TopicResult is the outcome for one topic.
type TopicResult struct {
	Spec        TopicSpec
	State       TopicState
	Differences []string // "partitions: want 3, have 6"
}

// ErrTopicDiffers is returned by EnsureTopics when a topic exists with other settings.
var ErrTopicDiffers = errors.New("topic exists with other settings")

func (s TopicSpec) configs() map[string]*string {
	if s.Retention <= 0 {
		return nil
	}
	return map[string]*string{"retention.ms": kadm.StringPtr(strconv.FormatInt(s.Retention.Milliseconds(), 10))}
}

// EnsureTopics creates the topics that are missing and compares the ones that
// exist with their spec. It returns every result, and ErrTopicDiffers when
// any existing topic has other partitions, replication or retention.
func EnsureTopics(ctx context.Context, adm *kadm.Client, specs ...TopicSpec) ([]TopicResult, error) {
	results := make([]TopicResult, 0, len(specs))
	var differ bool
	for _, s := range specs {
		resp, err := adm.CreateTopic(ctx, s.Partitions, s.ReplicationFactor, s.configs(), s.Name)
		switch {
		case err == nil:
			results = append(results, TopicResult{Spec: s, State: TopicCreated})
			continue
		case errors.Is(err, kerr.TopicAlreadyExists):
		default:
			return results, fmt.Errorf("create topic %s: %w", s.Name, describeErr(err, resp.ErrMessage))
		}
		diffs, err := compareTopic(ctx, adm, s)
		if err != nil {
			return results, err
		}
		r := TopicResult{Spec: s, State: TopicExists, Differences: diffs}
		if len(diffs) > 0 {
			r.State = TopicDiffers
			differ = true
		}
		results = append(results, r)
	}
	if differ {
		return results, ErrTopicDiffers
	}
	return results, nil
}

func describeErr(err error, msg string) error {
	if msg != "" {
		return fmt.Errorf("%w: %s", err, msg)
	}
	return err
}

func compareTopic(ctx context.Context, adm *kadm.Client, s TopicSpec) ([]string, error) {
	d, err := DescribeTopic(ctx, adm, s.Name)
	if err != nil {
		return nil, err
	}
	var diffs []string
	if len(d.Partitions) != int(s.Partitions) {
		diffs = append(diffs, fmt.Sprintf("partitions: want %d, have %d", s.Partitions, len(d.Partitions)))
	}
	if d.ReplicationFactor != s.ReplicationFactor {
		diffs = append(diffs, fmt.Sprintf("replication factor: want %d, have %d", s.ReplicationFactor, d.ReplicationFactor))
	}
	if want := s.configs()["retention.ms"]; want != nil && d.Configs["retention.ms"] != *want {
		diffs = append(diffs, fmt.Sprintf("retention.ms: want %s, have %s", *want, d.Configs["retention.ms"]))
	}
	return diffs, nil
}

// PartitionInfo is one partition as `topic describe` shows it.
type PartitionInfo struct {
	Partition     int32
	Leader        int32
	Replicas      []int32
	StartOffset   int64
	HighWatermark int64
}

// TopicInfo is a topic as `topic describe` shows it.
type TopicInfo struct {
	Name              string
	Partitions        []PartitionInfo
	ReplicationFactor int16
	// Configs holds the topic's non-default configs, plus retention.ms always.
	Configs map[string]string
}

// ErrNoTopic means the topic does not exist.
var ErrNoTopic = errors.New("topic does not exist")

// DescribeTopic reads a topic's partitions, offsets and configs.
func DescribeTopic(ctx context.Context, adm *kadm.Client, name string) (TopicInfo, error) {
	md, err := adm.ListTopics(ctx, name)
	if err != nil {
		return TopicInfo{}, fmt.Errorf("describe topic %s: %w", name, err)
	}
	td, ok := md[name]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return TopicInfo{}, fmt.Errorf("%w: %s", ErrNoTopic, name)
	}
	if td.Err != nil {
		return TopicInfo{}, fmt.Errorf("describe topic %s: %w", name, td.Err)
	}
	ends, err := adm.ListEndOffsets(ctx, name)
	if err != nil {
		return TopicInfo{}, fmt.Errorf("list end offsets of %s: %w", name, err)
	}
	starts, err := adm.ListStartOffsets(ctx, name)
	if err != nil {
		return TopicInfo{}, fmt.Errorf("list start offsets of %s: %w", name, err)
	}
	info := TopicInfo{Name: name, Configs: map[string]string{}}
	for _, p := range td.Partitions.Sorted() {
		pi := PartitionInfo{Partition: p.Partition, Leader: p.Leader, Replicas: p.Replicas}
		if o, ok := ends.Lookup(name, p.Partition); ok {
			pi.HighWatermark = o.Offset
		}
		if o, ok := starts.Lookup(name, p.Partition); ok {
			pi.StartOffset = o.Offset
		}
		info.Partitions = append(info.Partitions, pi)
		info.ReplicationFactor = int16(min(len(p.Replicas), math.MaxInt16))
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, name)
	if err != nil {
		return TopicInfo{}, fmt.Errorf("describe configs of %s: %w", name, err)
	}
	rc, err := rcs.On(name, nil)
	if err != nil {
		return TopicInfo{}, fmt.Errorf("describe configs of %s: %w", name, err)
	}
	for _, c := range rc.Configs {
		if c.Value == nil {
			continue
		}
		if c.Key == "retention.ms" || c.Source.String() == "DYNAMIC_TOPIC_CONFIG" {
			info.Configs[c.Key] = *c.Value
		}
	}
	return info, nil
}

// ConfigKeys returns a topic's config names in order, for printing.
func (t TopicInfo) ConfigKeys() []string {
	keys := make([]string, 0, len(t.Configs))
	for k := range t.Configs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ErrGroupConfig wraps a broker's refusal of a group's config.
var ErrGroupConfig = errors.New("the broker refused the group's config")

// SetGroupSessionTimeout sets group's own session timeout under KIP-848's
// protocol (the group config consumer.session.timeout.ms, Kafka 4.0 and
// later), where the broker, not the member, decides it. Kafka refuses a
// value outside the brokers' group.consumer.min.session.timeout.ms and
// group.consumer.max.session.timeout.ms (45 s and 60 s unless set), and a
// client without ALTER_CONFIGS on the group: the error wraps ErrGroupConfig
// with Kafka's, and the group keeps the brokers'
// group.consumer.session.timeout.ms.
func SetGroupSessionTimeout(ctx context.Context, cl *kgo.Client, group string, d time.Duration) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = kmsg.ConfigResourceTypeGroupConfig, group
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Op, c.Value = "consumer.session.timeout.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(strconv.FormatInt(d.Milliseconds(), 10))
	res.Configs = append(res.Configs, c)
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("set the session timeout of group %s: %w", group, err)
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			msg := ""
			if r.ErrorMessage != nil {
				msg = ": " + *r.ErrorMessage
			}
			return fmt.Errorf("%w: consumer.session.timeout.ms=%d of group %s: %w%s", ErrGroupConfig, d.Milliseconds(), group, err, msg)
		}
	}
	return nil
}
