package inspect

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The exporter's lag is the broker's: a group that committed part of the
// topic lags by the rest, a group that never read it by all of it, with no
// member of either running; a broker gone is said (up 0, no lag series),
// once in the log, and its return too.
func TestTheLagIsReadFromTheBrokerWithNoMemberRunning(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RetryTimeout(time.Second), kgo.RequestRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for i := range 12 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Partition: int32(i % 3), Value: []byte("o")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	var read kadm.Offsets
	read.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 4, LeaderEpoch: -1}) // all of partition 0
	read.Add(kadm.Offset{Topic: "orders", Partition: 1, At: 1, LeaderEpoch: -1}) // 3 of 4 left
	if err := adm.CommitAllOffsets(ctx, "readers", read); err != nil {
		t.Fatal(err)
	}

	var log bytes.Buffer
	lc := &LagCollector{Admin: adm, Topic: "orders", Groups: []LagGroup{{"readers", "consumer"}, {"nobody", "analytics"}}, Timeout: 3 * time.Second,
		Log: slog.New(slog.NewJSONHandler(&log, nil))}
	reg := prometheus.NewRegistry()
	reg.MustRegister(lc)
	want := `
# HELP foodpipe_group_lag_up 1 when the broker answered this scrape's look at the group, else 0 (and no lag series for it).
# TYPE foodpipe_group_lag_up gauge
foodpipe_group_lag_up{component="analytics",group="nobody"} 1
foodpipe_group_lag_up{component="consumer",group="readers"} 1
# HELP foodpipe_group_members Members of the group, as its coordinator describes it.
# TYPE foodpipe_group_members gauge
foodpipe_group_members{component="analytics",group="nobody"} 0
foodpipe_group_members{component="consumer",group="readers"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "foodpipe_group_lag_up", "foodpipe_group_members"); err != nil {
		t.Error(err)
	}
	lag := map[string][]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "foodpipe_group_lag" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var group string
			for _, l := range m.GetLabel() {
				if l.GetName() == "group" {
					group = l.GetValue()
				}
			}
			lag[group] = append(lag[group], m.GetGauge().GetValue())
		}
	}
	// Partitions in order: 0, 1, 2, each holding 4 records.
	if got, want := lag["readers"], []float64{0, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("lag of the group that read some: %v, want %v", got, want)
	}
	if got, want := lag["nobody"], []float64{4, 4, 4}; !slices.Equal(got, want) {
		t.Errorf("lag of the group that read nothing: %v, want %v", got, want)
	}

	c.Close()
	for range 2 {
		if n, err := testutil.GatherAndCount(reg, "foodpipe_group_lag"); err != nil || n != 0 {
			t.Errorf("with the broker gone: %d lag series (%v), want none", n, err)
		}
	}
	down := `
# HELP foodpipe_group_lag_up 1 when the broker answered this scrape's look at the group, else 0 (and no lag series for it).
# TYPE foodpipe_group_lag_up gauge
foodpipe_group_lag_up{component="analytics",group="nobody"} 0
foodpipe_group_lag_up{component="consumer",group="readers"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(down), "foodpipe_group_lag_up"); err != nil {
		t.Error(err)
	}
	if n := strings.Count(log.String(), "cannot read the group's lag"); n != 2 {
		t.Errorf("the broker gone was logged %d times over three scrapes of two groups, want once a group:\n%s", n, log.String())
	}
}
