package kafka

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is an embedded single-node Kafka-protocol broker. It speaks the real
// wire protocol, so any Kafka client (kcat, the Java tools) can talk to it;
// it is what lets foodpipe run without Docker or a JVM.
type Broker struct {
	cluster *kfake.Cluster
}

// BrokerOptions configure StartBroker.
type BrokerOptions struct {
	// Listen is host:port; port 0 picks a free one.
	Listen string
	// DataDir keeps topics, offsets and groups across restarts when set;
	// without it everything lives in memory and is gone at exit.
	DataDir string
	// GroupSessionTimeout is the session timeout of the groups that speak
	// KIP-848's protocol (the broker's group.consumer.session.timeout.ms),
	// their heartbeat interval a third of it, at most Kafka's 5 s
	// (group.consumer.heartbeat.interval.ms): under KIP-848 the broker, not
	// the member, sets both. 0 keeps Kafka's defaults, 45 s and 5 s. A group
	// may still have its own (SetGroupSessionTimeout).
	GroupSessionTimeout time.Duration
}

// StartBroker starts a broker and returns once it accepts connections.
func StartBroker(o BrokerOptions) (*Broker, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		return nil, fmt.Errorf("listen address %q: %w", o.Listen, err)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("foodpipe"),
		// The address clients are told to connect to is the listener's own,
		// so listen on the address clients use.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, o.Listen)
		}),
		kfake.BrokerConfigs(brokerConfigs(o)),
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start broker on %s: %w", o.Listen, err)
	}
	return &Broker{cluster: c}, nil
}

// brokerConfigs are the broker's settings that o asks for.
func brokerConfigs(o BrokerOptions) map[string]string {
	cfgs := map[string]string{"default.replication.factor": "1"}
	if d := o.GroupSessionTimeout; d > 0 {
		cfgs["group.consumer.session.timeout.ms"] = strconv.FormatInt(d.Milliseconds(), 10)
		cfgs["group.consumer.heartbeat.interval.ms"] = strconv.FormatInt(min(d/3, 5*time.Second).Milliseconds(), 10)
	}
	return cfgs
}

// Addr is the host:port clients connect to.
func (b *Broker) Addr() string { return b.cluster.ListenAddrs()[0] }

// Close stops the broker, flushing its data dir when it has one.
func (b *Broker) Close() { b.cluster.Close() }
