package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"foodpipe/internal/kafka"
)

// PrintCreated writes what `foodpipe topic create` did of each topic: made
// it, found it as asked, or found it with other settings, and which.
func PrintCreated(w io.Writer, results []kafka.TopicResult) {
	for _, r := range results {
		fmt.Fprintf(w, "%-24s %s", safe(r.Spec.Name), r.State)
		if len(r.Differences) > 0 {
			fmt.Fprintf(w, ": %s", safe(strings.Join(r.Differences, "; ")))
		}
		fmt.Fprintln(w)
	}
}

// PrintTopic writes `foodpipe topic describe` of one topic: its partitions,
// replication factor and configs, and each partition's leader, replicas and
// offsets.
func PrintTopic(w io.Writer, t kafka.TopicInfo) {
	fmt.Fprintf(w, "topic %s: %s, replication factor %d\n", safe(t.Name), count(len(t.Partitions), "partition"), t.ReplicationFactor)
	for _, k := range t.ConfigKeys() {
		fmt.Fprintf(w, "  %s=%s\n", safe(k), safe(t.Configs[k]))
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PARTITION\tLEADER\tREPLICAS\tSTART\tHIGH WATERMARK\tMESSAGES")
	for _, p := range t.Partitions {
		fmt.Fprintf(tw, "  %d\t%d\t%v\t%d\t%d\t%d\n", p.Partition, p.Leader, p.Replicas, p.StartOffset, p.HighWatermark, p.HighWatermark-p.StartOffset)
	}
	tw.Flush()
}

// PrintKeys writes `foodpipe topic keys`: the keys on each partition of
// topic with their messages, the keys found on more than one partition, and
// how many keys kcat's partitioner would send elsewhere than foodpipe's.
func PrintKeys(w io.Writer, topic string, ks kafka.Keys) {
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
