package inspect

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"

	"foodpipe/internal/kafka"
)

// LagCollector exports, at each scrape, what the broker says of each group's
// reading of a topic: the lag per partition (from the group's committed
// offset to the last stable offset), its members and whether the broker
// answered. The consumers export a lag of their own, as of their last
// fetch, but only while they run: when every member of a group is down,
// their series are gone, and an alert on them cannot tell "no lag" from "no
// one left to report it". Read from the broker's side by a process of its
// own (`foodpipe exporter`), the lag goes on growing while nobody reads.
type LagCollector struct {
	Admin   *kadm.Client
	Topic   string
	Groups  []LagGroup
	Timeout time.Duration // bounds one scrape's look at the broker
	Log     *slog.Logger

	mu      sync.Mutex
	failing map[string]bool // groups whose last look failed: told once, not every scrape
}

// LagGroup is a group the exporter looks at, and the component whose members
// form it ("consumer", "analytics", "notify": the job their own metrics are
// scraped under), so that an alert on the orders group needs not know the
// group's name.
type LagGroup struct {
	Group, Component string
}

var (
	lagDesc = prometheus.NewDesc("foodpipe_group_lag",
		"Records of the topic a group has still to read, per partition, from the broker: from the group's committed offset (or, before its first commit, the oldest record kept) to the last stable offset.",
		[]string{"group", "component", "topic", "partition"}, nil)
	membersDesc = prometheus.NewDesc("foodpipe_group_members",
		"Members of the group, as its coordinator describes it.", []string{"group", "component"}, nil)
	upDesc = prometheus.NewDesc("foodpipe_group_lag_up",
		"1 when the broker answered this scrape's look at the group, else 0 (and no lag series for it).", []string{"group", "component"}, nil)
)

// Describe sends the descriptors of the metrics Collect sends.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- membersDesc
	ch <- upDesc
}

// Collect looks at each group on the broker, within Timeout.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	for _, g := range c.Groups {
		v, err := kafka.InspectGroup(ctx, c.Admin, c.Topic, g.Group)
		c.tell(g.Group, err)
		if err != nil {
			ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0, g.Group, g.Component)
			continue
		}
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 1, g.Group, g.Component)
		ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, float64(len(v.Members)), g.Group, g.Component)
		for _, p := range v.Partitions {
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(p.Lag), g.Group, g.Component, c.Topic, strconv.Itoa(int(p.Partition)))
		}
	}
}

// tell logs a group's look failing, and then succeeding again, once each.
func (c *LagCollector) tell(group string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failing == nil {
		c.failing = map[string]bool{}
	}
	switch {
	case err != nil && !c.failing[group]:
		c.Log.Warn("cannot read the group's lag from the broker; foodpipe_group_lag_up is 0 until it answers", slog.String("group", group), slog.Any("err", err))
	case err == nil && c.failing[group]:
		c.Log.Info("reading the group's lag from the broker again", slog.String("group", group))
	}
	c.failing[group] = err != nil
}
