package kafka

import (
	"context"
	"hash/crc32"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Keys is where a topic's keys are: each partition's messages and the keys
// they carry, the keys found on more than one partition, and the keys two
// common partitioners place apart. Clients that hash keys differently split
// a key over partitions, and with it the order of its messages.
type Keys struct {
	// Partitions are every partition of the topic, in order.
	Partitions []PartitionKeys
	// Split are the keys found on more than one partition (a message with
	// no key counts as the key ""), by key.
	Split []KeyPlace
	// Keyed is how many distinct keys the topic holds, the empty one aside.
	Keyed int
	// Differ are the keys (the empty one aside) that crc32 and murmur2 send
	// to different partitions, by key.
	Differ []KeyPlace
}

// PartitionKeys are one partition's messages and the keys they carry.
type PartitionKeys struct {
	Partition int32
	Messages  int
	// Keys are by key, each with its messages.
	Keys []KeyCount
}

// KeyCount is a key and how many messages carry it.
type KeyCount struct {
	Key      string
	Messages int
}

// KeyPlace is where a key is, and where each partitioner would send it.
type KeyPlace struct {
	Key string
	// Partitions are those it was found on, in order.
	Partitions []int32
	// Murmur2 is the partition franz-go's and the Java client's default
	// partitioner give it, CRC32 librdkafka's (kcat's).
	Murmur2, CRC32 int
}

// InspectKeys reads the whole topic (ReadTopic, with base client options)
// and tells where its keys are.
func InspectKeys(ctx context.Context, base []kgo.Opt, adm *kadm.Client, topic string) (Keys, error) {
	t, err := DescribeTopic(ctx, adm, topic)
	if err != nil {
		return Keys{}, err
	}
	recs, err := ReadTopic(ctx, base, adm, topic)
	if err != nil {
		return Keys{}, err
	}
	return AnalyzeKeys(len(t.Partitions), recs), nil
}

// AnalyzeKeys tells where the keys of recs are on a topic of partitions
// partitions.
func AnalyzeKeys(partitions int, recs []*kgo.Record) Keys {
	messages := map[int32]int{}
	keys := map[int32]map[string]int{} // partition → key → messages
	for _, r := range recs {
		messages[r.Partition]++
		if keys[r.Partition] == nil {
			keys[r.Partition] = map[string]int{}
		}
		keys[r.Partition][string(r.Key)]++
	}
	var ks Keys
	where := map[string][]int32{}
	for p := int32(0); int(p) < partitions; p++ {
		pk := PartitionKeys{Partition: p, Messages: messages[p]}
		for _, k := range slices.Sorted(maps.Keys(keys[p])) {
			where[k] = append(where[k], p)
			pk.Keys = append(pk.Keys, KeyCount{Key: k, Messages: keys[p][k]})
		}
		ks.Partitions = append(ks.Partitions, pk)
	}
	place := func(k string) KeyPlace {
		return KeyPlace{Key: k, Partitions: where[k], Murmur2: Murmur2Partition(k, partitions), CRC32: CRC32Partition(k, partitions)}
	}
	for _, k := range slices.Sorted(maps.Keys(where)) {
		if len(where[k]) > 1 {
			ks.Split = append(ks.Split, place(k))
		}
		if k == "" {
			continue
		}
		ks.Keyed++
		if kp := place(k); kp.Murmur2 != kp.CRC32 {
			ks.Differ = append(ks.Differ, kp)
		}
	}
	return ks
}

// Murmur2Partition is the partition franz-go's and the Java client's default
// partitioner give a key: murmur2 of the key, sign bit cleared, modulo the
// partition count. It asks franz-go itself rather than copying the hash.
func Murmur2Partition(key string, partitions int) int {
	return kgo.StickyKeyPartitioner(nil).ForTopic("").Partition(&kgo.Record{Key: []byte(key)}, partitions)
}

// CRC32Partition is the partition librdkafka's default partitioner
// (consistent_random, which kcat uses) gives a key: crc32 of the key modulo
// the partition count.
func CRC32Partition(key string, partitions int) int {
	return kgo.SaramaHasher(crc32.ChecksumIEEE)([]byte(key), partitions)
}
