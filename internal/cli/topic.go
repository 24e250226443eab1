package cli

import (
	"context"
	"errors"
	"fmt"

	"foodpipe/internal/config"
	"foodpipe/internal/kafka"
	"foodpipe/internal/report"
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
		report.PrintCreated(env.Stdout, results)
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
		report.PrintTopic(env.Stdout, t)
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

// topicKeys prints the keys of the orders topic grouped by partition, the
// keys found on more than one partition, and the keys kcat's default
// partitioner would send elsewhere (kafka.InspectKeys).
func topicKeys(ctx context.Context, env *Env, cfg config.Config) error {
	adm, closeAdm, err := wire.Admin(ctx, cfg, env.Log)
	if err != nil {
		return err
	}
	defer closeAdm()
	ks, err := kafka.InspectKeys(ctx, kafka.ClientOpts(wire.KafkaOptions(cfg, env.Log)), adm, cfg.Topic)
	if err != nil {
		return err
	}
	report.PrintKeys(env.Stdout, cfg.Topic, ks)
	return nil
}
