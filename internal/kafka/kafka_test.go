package kafka

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func startBroker(t *testing.T, o BrokerOptions) *Broker {
	t.Helper()
	b, err := StartBroker(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func admin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(ClientOpts(Options{Brokers: []string{addr}, ClientID: "test"})...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func TestEnsureTopicsCreatesThenRecognisesThenReportsDifferences(t *testing.T) {
	ctx := context.Background()
	b := startBroker(t, BrokerOptions{})
	adm := admin(t, b.Addr())
	spec := TopicSpec{Name: "food-orders", Partitions: 3, ReplicationFactor: 1, Retention: 7 * 24 * time.Hour}

	res, err := EnsureTopics(ctx, adm, spec)
	if err != nil || len(res) != 1 || res[0].State != TopicCreated {
		t.Fatalf("first call: %+v, %v", res, err)
	}
	res, err = EnsureTopics(ctx, adm, spec)
	if err != nil || res[0].State != TopicExists {
		t.Fatalf("second call: %+v, %v", res, err)
	}
	other := spec
	other.Partitions, other.Retention = 6, 24*time.Hour
	res, err = EnsureTopics(ctx, adm, other)
	if !errors.Is(err, ErrTopicDiffers) || res[0].State != TopicDiffers || len(res[0].Differences) != 2 {
		t.Fatalf("differing spec: %+v, %v", res, err)
	}

	info, err := DescribeTopic(ctx, adm, "food-orders")
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Partitions) != 3 || info.ReplicationFactor != 1 || info.Configs["retention.ms"] != "604800000" {
		t.Fatalf("describe: %+v", info)
	}
	if keys := info.ConfigKeys(); len(keys) == 0 || keys[0] != "retention.ms" {
		t.Errorf("config keys %v", keys)
	}
}

func TestDescribeShowsHighWatermarksAfterProducing(t *testing.T) {
	ctx := context.Background()
	b := startBroker(t, BrokerOptions{})
	adm := admin(t, b.Addr())
	if _, err := EnsureTopics(ctx, adm, TopicSpec{Name: "t", Partitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(ClientOpts(Options{Brokers: []string{b.Addr()}})...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < 5; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Partition: 0, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	info, err := DescribeTopic(ctx, adm, "t")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range info.Partitions {
		total += p.HighWatermark - p.StartOffset
	}
	if total != 5 {
		t.Errorf("messages over partitions = %d, want 5", total)
	}
	if _, err := DescribeTopic(ctx, adm, "missing"); !errors.Is(err, ErrNoTopic) {
		t.Errorf("missing topic: %v", err)
	}
}

func TestABrokerWithADataDirKeepsMessagesAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := StartBroker(BrokerOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	adm := admin(t, addr)
	if _, err := EnsureTopics(ctx, adm, TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	cl, _ := kgo.NewClient(ClientOpts(Options{Brokers: []string{addr}})...)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("kept")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	b.Close()

	b2 := startBroker(t, BrokerOptions{Listen: addr, DataDir: dir})
	info, err := DescribeTopic(ctx, admin(t, b2.Addr()), "t")
	if err != nil {
		t.Fatal(err)
	}
	if info.Partitions[0].HighWatermark != 1 {
		t.Errorf("high watermark after restart = %d, want 1", info.Partitions[0].HighWatermark)
	}
}

func TestPingFailsClearlyWhenNoBrokerAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cl, err := kgo.NewClient(ClientOpts(Options{Brokers: []string{addr}})...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	err = Ping(context.Background(), cl, []string{addr}, 2)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
}

func TestStartBrokerRefusesABadListenAddress(t *testing.T) {
	if _, err := StartBroker(BrokerOptions{Listen: "nonsense"}); err == nil {
		t.Fatal("want an error")
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	f := Backoff(100*time.Millisecond, time.Second)
	for n := 1; n < 30; n++ {
		bound := min(time.Second, 100*time.Millisecond<<(n-1))
		for range 20 {
			if d := f(n); d < bound/3-time.Millisecond || d > bound {
				t.Fatalf("try %d waits %v, want between %v and %v", n, d, bound/3, bound)
			}
		}
	}
}
