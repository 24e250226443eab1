package kafka

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestAnalyzeKeysFindsAKeySplitByTwoPartitioners(t *testing.T) {
	// CUST-10003 is one of the customers the two hashes place apart.
	const key = "CUST-10003"
	m, c := int32(Murmur2Partition(key, 3)), int32(CRC32Partition(key, 3))
	if m == c {
		t.Fatalf("murmur2 and crc32 both give %d for %s", m, key)
	}
	ks := AnalyzeKeys(3, []*kgo.Record{{Partition: m, Key: []byte(key)}, {Partition: m, Key: []byte(key)}, {Partition: c, Key: []byte(key)}})
	if len(ks.Partitions) != 3 {
		t.Fatalf("%d partitions, want every one of the topic's 3", len(ks.Partitions))
	}
	if got := ks.Partitions[m]; got.Messages != 2 || !slices.Equal(got.Keys, []KeyCount{{key, 2}}) {
		t.Errorf("partition %d: %+v", m, got)
	}
	want := KeyPlace{Key: key, Partitions: []int32{min(m, c), max(m, c)}, Murmur2: int(m), CRC32: int(c)}
	if len(ks.Split) != 1 || !equalPlace(ks.Split[0], want) {
		t.Errorf("split %+v, want %+v", ks.Split, want)
	}
	if ks.Keyed != 1 || len(ks.Differ) != 1 || ks.Differ[0].Key != key {
		t.Errorf("%d keyed, differ %+v", ks.Keyed, ks.Differ)
	}
}

func TestAnalyzeKeysFindsEveryKeyOnOnePartitionWhenAllHashAlike(t *testing.T) {
	var recs []*kgo.Record
	for i := range 100 {
		k := fmt.Sprintf("CUST-%d", 10001+i)
		recs = append(recs, &kgo.Record{Partition: int32(Murmur2Partition(k, 3)), Key: []byte(k)})
	}
	recs = append(recs, &kgo.Record{Partition: 0}, &kgo.Record{Partition: 0}) // no key
	ks := AnalyzeKeys(3, recs)
	if len(ks.Split) != 0 || ks.Keyed != 100 {
		t.Errorf("split %+v, %d keyed; want none split and 100 keyed", ks.Split, ks.Keyed)
	}
	messages := 0
	for _, p := range ks.Partitions {
		messages += p.Messages
		if !slices.IsSortedFunc(p.Keys, func(a, b KeyCount) int { return strings.Compare(a.Key, b.Key) }) {
			t.Errorf("partition %d: keys out of order", p.Partition)
		}
	}
	if messages != 102 {
		t.Errorf("%d messages over the partitions, want 102", messages)
	}
	for _, d := range ks.Differ {
		if d.Key == "" || d.Murmur2 == d.CRC32 {
			t.Errorf("differ lists %+v", d)
		}
	}
}

func equalPlace(a, b KeyPlace) bool {
	return a.Key == b.Key && slices.Equal(a.Partitions, b.Partitions) && a.Murmur2 == b.Murmur2 && a.CRC32 == b.CRC32
}
