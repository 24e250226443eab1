package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/kafka"
	"foodpipe/internal/order"
)

func TestTopicKeysShowsAKeySplitByTwoPartitioners(t *testing.T) {
	// CUST-10003 is one of the customers the two hashes place apart.
	const key = "CUST-10003"
	m, c := int32(kafka.Murmur2Partition(key, 3)), int32(kafka.CRC32Partition(key, 3))
	if m == c {
		t.Fatalf("murmur2 and crc32 both give %d for %s", m, key)
	}
	recs := []*kgo.Record{{Partition: m, Key: []byte(key)}, {Partition: m, Key: []byte(key)}, {Partition: c, Key: []byte(key)}}
	var buf bytes.Buffer
	PrintKeys(&buf, "food-orders", kafka.AnalyzeKeys(3, recs))
	out := buf.String()
	for _, w := range []string{"PARTITION  MESSAGES  KEYS", "1 key is on more than one partition", key + " is on partitions",
		"1 of these 1 key goes to another partition"} {
		if !strings.Contains(out, w) {
			t.Errorf("topic keys lacks %q:\n%s", w, out)
		}
	}
}

func TestTopicKeysAgreesWithTheCustomersOnOnePartition(t *testing.T) {
	var recs []*kgo.Record
	for _, k := range order.Customers() {
		recs = append(recs, &kgo.Record{Partition: int32(kafka.Murmur2Partition(k, 3)), Key: []byte(k)})
	}
	var buf bytes.Buffer
	PrintKeys(&buf, "food-orders", kafka.AnalyzeKeys(3, recs))
	out := buf.String()
	if !strings.Contains(out, "every key is on one partition") || !strings.Contains(out, "of these 100 keys") {
		t.Errorf("topic keys over the 100 customers:\n%s", out)
	}
	// Eight keys a line: no line is longer than a wide terminal.
	for _, l := range strings.Split(out, "\n") {
		if len(l) > 160 && !strings.Contains(l, "kcat") {
			t.Errorf("line of %d characters: %s", len(l), l)
		}
	}
}
