package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"foodpipe/internal/kafka"
	"foodpipe/internal/pipeline"
)

func runTopic(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "describe" && args[0] != "keys") {
		return fmt.Errorf("%w: foodpipe topic create|describe|keys [flags]", ErrUsage)
	}
	f, err := newFlags(env, "topic "+args[0])
	if err != nil {
		return err
	}
	f.kafkaFlags()
	f.bind("dlq-topic", "KAFKA_DLQ_TOPIC")
	if args[0] == "create" {
		f.bind("partitions", "KAFKA_PARTITIONS")
		f.bind("replication-factor", "KAFKA_REPLICATION_FACTOR")
		f.bind("retention", "KAFKA_RETENTION")
	}
	cfg, err := f.parse(args[1:])
	if err != nil {
		return err
	}
	if args[0] == "keys" {
		return topicKeys(ctx, env, cfg)
	}
	adm, closeAdm, err := pipeline.Admin(ctx, cfg, env.Log)
	if err != nil {
		return err
	}
	defer closeAdm()

	if args[0] == "create" {
		results, err := kafka.EnsureTopics(ctx, adm, pipeline.TopicSpecs(cfg)...)
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
