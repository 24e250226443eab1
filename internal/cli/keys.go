package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"foodpipe/internal/config"
	"foodpipe/internal/kafka"
	"foodpipe/internal/wire"
)

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
	printKeys(env, cfg.Topic, ks)
	return nil
}

func printKeys(env *Env, topic string, ks kafka.Keys) {
	w := env.Stdout
	fmt.Fprintf(w, "topic %s: the keys (customer ids) on each partition, with their messages in brackets\n\n", safe(topic))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tMESSAGES\tKEYS")
	for _, p := range ks.Partitions {
		var list []string
		for _, k := range p.Keys {
			list = append(list, fmt.Sprintf("%s(%d)", safe(orNoKey(k.Key)), k.Messages))
		}
		// Eight keys a line keep a hundred customers readable in a terminal.
		fmt.Fprintf(tw, "%d\t%d\t", p.Partition, p.Messages)
		for i := 0; i < len(list) || i == 0; i += 8 {
			if i > 0 {
				fmt.Fprint(tw, "\t\t")
			}
			fmt.Fprintln(tw, strings.Join(list[i:min(i+8, len(list))], " "))
		}
	}
	tw.Flush()

	// A key on two partitions was produced by clients that hash differently
	// (or before the topic gained partitions): its order is lost.
	fmt.Fprintln(w)
	if len(ks.Split) == 0 {
		fmt.Fprintln(w, "every key is on one partition")
	} else {
		var split []string
		for _, k := range ks.Split {
			split = append(split, fmt.Sprintf("  %s is on partitions %v (murmur2 gives %d, crc32 gives %d)",
				safe(orNoKey(k.Key)), k.Partitions, k.Murmur2, k.CRC32))
		}
		fmt.Fprintf(w, "%s on more than one partition:\n%s\n", isAre(len(split), "key"), strings.Join(split, "\n"))
	}

	goes := "go"
	if len(ks.Differ) == 1 {
		goes = "goes"
	}
	fmt.Fprintf(w, "%d of these %s %s to another partition with kcat's default partitioner (crc32) than with foodpipe's (murmur2)",
		len(ks.Differ), count(ks.Keyed, "key"), goes)
	if len(ks.Differ) > 0 {
		k := ks.Differ[0]
		fmt.Fprintf(w, ", e.g. %s: crc32 → %d, murmur2 → %d", safe(k.Key), k.CRC32, k.Murmur2)
	}
	fmt.Fprintln(w)
}

func orNoKey(k string) string {
	if k == "" {
		return "(no key)"
	}
	return k
}
