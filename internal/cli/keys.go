package cli

import (
	"context"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/config"
	"foodpipe/internal/kafka"
	"foodpipe/internal/wire"
)

// keyPartitions is what `foodpipe topic keys` found: for each partition of
// the topic, its messages and the keys they carry.
type keyPartitions struct {
	partitions int
	messages   map[int32]int
	keys       map[int32]map[string]int // partition → key → messages
}

// murmur2Partition is the partition franz-go's and the Java client's default
// partitioner give a key: murmur2 of the key, sign bit cleared, modulo the
// partition count. It asks franz-go itself rather than copying the hash.
func murmur2Partition(key string, partitions int) int {
	return kgo.StickyKeyPartitioner(nil).ForTopic("").Partition(&kgo.Record{Key: []byte(key)}, partitions)
}

// crc32Partition is the partition librdkafka's default partitioner
// (consistent_random, which kcat uses) gives a key: crc32 of the key modulo
// the partition count.
func crc32Partition(key string, partitions int) int {
	return kgo.SaramaHasher(crc32.ChecksumIEEE)([]byte(key), partitions)
}

// topicKeys prints the keys of the orders topic grouped by partition, the
// keys found on more than one partition, and the keys kcat's default
// partitioner would send elsewhere.
func topicKeys(ctx context.Context, env *Env, cfg config.Config) error {
	adm, closeAdm, err := wire.Admin(ctx, cfg, env.Log)
	if err != nil {
		return err
	}
	defer closeAdm()
	t, err := kafka.DescribeTopic(ctx, adm, cfg.Topic)
	if err != nil {
		return err
	}
	recs, err := kafka.ReadTopic(ctx, kafka.ClientOpts(wire.KafkaOptions(cfg, env.Log)), adm, cfg.Topic)
	if err != nil {
		return err
	}
	kp := keyPartitions{partitions: len(t.Partitions), messages: map[int32]int{}, keys: map[int32]map[string]int{}}
	for _, r := range recs {
		kp.messages[r.Partition]++
		if kp.keys[r.Partition] == nil {
			kp.keys[r.Partition] = map[string]int{}
		}
		kp.keys[r.Partition][string(r.Key)]++
	}
	printKeys(env, cfg.Topic, kp)
	return nil
}

func printKeys(env *Env, topic string, kp keyPartitions) {
	w := env.Stdout
	fmt.Fprintf(w, "topic %s: the keys (customer ids) on each partition, with their messages in brackets\n\n", safe(topic))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tMESSAGES\tKEYS")
	where := map[string][]int32{}
	for p := int32(0); int(p) < kp.partitions; p++ {
		var list []string
		for _, k := range slices.Sorted(maps.Keys(kp.keys[p])) {
			where[k] = append(where[k], p)
			list = append(list, fmt.Sprintf("%s(%d)", safe(orNoKey(k)), kp.keys[p][k]))
		}
		// Eight keys a line keep a hundred customers readable in a terminal.
		fmt.Fprintf(tw, "%d\t%d\t", p, kp.messages[p])
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
	var split []string
	for _, k := range slices.Sorted(maps.Keys(where)) {
		if len(where[k]) > 1 {
			split = append(split, fmt.Sprintf("  %s is on partitions %v (murmur2 gives %d, crc32 gives %d)",
				safe(orNoKey(k)), where[k], murmur2Partition(k, kp.partitions), crc32Partition(k, kp.partitions)))
		}
	}
	fmt.Fprintln(w)
	if len(split) == 0 {
		fmt.Fprintln(w, "every key is on one partition")
	} else {
		fmt.Fprintf(w, "%s on more than one partition:\n%s\n", isAre(len(split), "key"), strings.Join(split, "\n"))
	}

	var differ []string
	keyed := 0
	for k := range where {
		if k == "" {
			continue
		}
		keyed++
		if murmur2Partition(k, kp.partitions) != crc32Partition(k, kp.partitions) {
			differ = append(differ, k)
		}
	}
	slices.Sort(differ)
	goes := "go"
	if len(differ) == 1 {
		goes = "goes"
	}
	fmt.Fprintf(w, "%d of these %s %s to another partition with kcat's default partitioner (crc32) than with foodpipe's (murmur2)",
		len(differ), count(keyed, "key"), goes)
	if len(differ) > 0 {
		k := differ[0]
		fmt.Fprintf(w, ", e.g. %s: crc32 → %d, murmur2 → %d", safe(k), crc32Partition(k, kp.partitions), murmur2Partition(k, kp.partitions))
	}
	fmt.Fprintln(w)
}

func orNoKey(k string) string {
	if k == "" {
		return "(no key)"
	}
	return k
}
