package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"foodpipe/internal/config"
	"foodpipe/internal/kafka"
	"foodpipe/internal/wire"
)

func runTopic(ctx context.Context, env *Env, args []string) error {
	build := func(sub string) (*flags, error) { return topicFlags(env, sub) }
	sub, err := subcommand(env, args, "foodpipe topic create|describe|keys [flags]", []string{"create", "describe", "keys"}, build)
	if err != nil {
		return err
	}
	f, err := topicFlags(env, sub)
	if err != nil {
		return err
	}
	cfg, err := f.parse(args[1:])
	if err != nil {
		return err
	}
	if sub == "keys" {
		return topicKeys(ctx, env, cfg)
	}
	adm, closeAdm, err := wire.Admin(ctx, cfg, env.Log)
	if err != nil {
		return err
	}
	defer closeAdm()

	if sub == "create" {
		results, err := kafka.EnsureTopics(ctx, adm, wire.TopicSpecs(cfg)...)
		for _, r := range results {
			fmt.Fprintf(env.Stdout, "%-24s %s", safe(r.Spec.Name), r.State)
			if len(r.Differences) > 0 {
				fmt.Fprintf(env.Stdout, ": %s", safe(strings.Join(r.Differences, "; ")))
			}
			fmt.Fprintln(env.Stdout)
		}
		if errors.Is(err, kafka.ErrTopicDiffers) {
			return fmt.Errorf("%w: foodpipe does not alter existing topics; delete and recreate it, or change the configuration to match", err)
		}
		return err
	}
	for _, name := range []string{cfg.Topic, cfg.DLQTopic} {
		t, err := kafka.DescribeTopic(ctx, adm, name)
		if err != nil {
			return err
		}
		printTopic(env, t)
	}
	return nil
}

// topicFlags are the flags of `topic sub`.
func topicFlags(env *Env, sub string) (*flags, error) {
	f, err := newFlags(env, "topic "+sub)
	if err != nil {
		return nil, err
	}
	f.kafkaFlags()
	f.bind("dlq-topic", config.KafkaDLQTopic)
	if sub == "create" {
		f.bind("partitions", config.KafkaPartitions)
		f.bind("replication-factor", config.KafkaReplicationFactor)
		f.bind("retention", config.KafkaRetention)
	}
	return f, nil
}

func printTopic(env *Env, t kafka.TopicInfo) {
	fmt.Fprintf(env.Stdout, "topic %s: %s, replication factor %d\n", safe(t.Name), count(len(t.Partitions), "partition"), t.ReplicationFactor)
	for _, k := range t.ConfigKeys() {
		fmt.Fprintf(env.Stdout, "  %s=%s\n", safe(k), safe(t.Configs[k]))
	}
	tw := tabwriter.NewWriter(env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PARTITION\tLEADER\tREPLICAS\tSTART\tHIGH WATERMARK\tMESSAGES")
	for _, p := range t.Partitions {
		fmt.Fprintf(tw, "  %d\t%d\t%v\t%d\t%d\t%d\n", p.Partition, p.Leader, p.Replicas, p.StartOffset, p.HighWatermark, p.HighWatermark-p.StartOffset)
	}
	tw.Flush()
}
