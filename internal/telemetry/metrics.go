package telemetry

import (
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are foodpipe's own Prometheus metrics, on a registry of their own
// (with the Go runtime and process collectors) so that one process serves
// exactly what it records. docs/METRICS.md says what each one means and what
// to alert on.
type Metrics struct {
	Registry *prometheus.Registry

	OrdersProduced  prometheus.Counter
	OrdersProcessed prometheus.Counter
	OrdersDuplicate prometheus.Counter
	OrdersInvalid   *prometheus.CounterVec // by reason
	DLQ             prometheus.Counter
	DBBatchSeconds  prometheus.Histogram
	E2ELatency      prometheus.Histogram
	DeliveryLatency prometheus.Histogram
	ConsumerLag     *prometheus.GaugeVec // by partition
	PartitionOwned  *prometheus.GaugeVec // by partition
	BreakerOpen     prometheus.Gauge
	BreakerOpens    prometheus.Counter
	Rebalances      prometheus.Counter
	Fenced          prometheus.Counter
	DLQPending      prometheus.Gauge
	DatabaseAway    prometheus.Gauge
	MessagesExpired prometheus.Counter
	// The notifier's (foodpipe notify): emails the mail server took,
	// attempts that failed and are retried, addresses refused for good, and
	// emails sent again after a notifier ended between sending and recording.
	NotifySent    prometheus.Counter
	NotifyRetried prometheus.Counter
	NotifyRefused prometheus.Counter
	NotifyInDoubt prometheus.Counter
	// NotifyReceiverDuplicates is what the receiver holds twice or more,
	// read from its API (a test mail server's); absent until read.
	NotifyReceiverDuplicates prometheus.Gauge
}

// Options are what the metrics are told by whoever makes them. Telemetry
// knows no reason an order is refused: the caller, who knows the packages that
// give them, hands them over.
type Options struct {
	// InvalidReasons are the values of foodpipe_orders_invalid_total's
	// reason label, each exported at 0 from the start (wire.NewMetrics
	// hands every reason a dead letter may carry, dlq.Reasons). A reason
	// not listed still counts; its series appears with its first message.
	InvalidReasons []string
	// Group, when not empty, is the label group on every foodpipe_ metric
	// of the process: the consumer group it is a member of. Two groups
	// read the same topic (the orders and the analytics), and their
	// members export the same names; without it a sum over the orders
	// group's lag or progress would take in the other's.
	Group string
}

// NewRegistry is a registry with what every foodpipe process exports: the Go
// runtime's and the process's collectors and foodpipe_build_info.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newBuildInfo(Build()))
	return reg
}

// NewMetrics creates the metrics on a new registry (NewRegistry).
func NewMetrics(o Options) *Metrics {
	reg := NewRegistry()
	// Latency buckets from 1 ms to about 33 s, doubling, with the 25 ms
	// p99 target as a bound of its own (LatencyTarget): between
	// 16 and 32 ms alone, a p99 of 20 ms and one of 30 ms read the same.
	latency := append(prometheus.ExponentialBuckets(0.001, 2, 16), LatencyTarget.Seconds())
	slices.Sort(latency)
	m := &Metrics{
		Registry: reg,
		OrdersProduced: prometheus.NewCounter(prometheus.CounterOpts{Name: "foodpipe_orders_produced_total",
			Help: "Orders the producer published and the brokers acknowledged."}),
		OrdersProcessed: prometheus.NewCounter(prometheus.CounterOpts{Name: "foodpipe_orders_processed_total",
			Help: "Orders the consumer newly stored in PostgreSQL."}),
		OrdersDuplicate: prometheus.NewCounter(prometheus.CounterOpts{Name: "foodpipe_orders_duplicate_total",
			Help: "Re-delivered orders that were already stored with the same content."}),
		OrdersInvalid: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "foodpipe_orders_invalid_total",
			Help: "Messages set aside for the dead-letter topic, by reason."}, []string{"reason"}),
		DLQ: prometheus.NewCounter(prometheus.CounterOpts{Name: "foodpipe_dlq_total",
			Help: "Dead letters the brokers acknowledged on the dead-letter topic."}),
		DBBatchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "foodpipe_db_batch_seconds",
			Help: "Time to write one batch to PostgreSQL, its transaction included.", Buckets: latency}),
		E2ELatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "foodpipe_e2e_latency_seconds",
			Help: "From an order's created_at to the commit of the transaction that stored it.", Buckets: latency}),
		DeliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "foodpipe_delivery_latency_seconds",
			Help: "From an order's hand-over to Kafka (its record's timestamp) to the commit of the transaction that stored it: the end-to-end latency without the producer's linger.", Buckets: latency}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "foodpipe_consumer_lag",
			Help: "Records on an owned partition not yet processed, as of the last fetch."}, []string{"partition"}),
		// The time a member was given a partition, rather than 1: whoever
		// reads two members that both say they own one (a zombie not yet
		// told it lost it) knows which was given it last, from the members
		// themselves, whatever order it read them in.
		PartitionOwned: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "foodpipe_partition_owned_since_seconds",
			Help: "Unix time at which this member was assigned the partition; present only while it owns it."}, []string{"partition"}),
		BreakerOpen: prometheus.NewGauge(prometheus.GaugeOpts{Name: "foodpipe_db_breaker_open",
			Help: "1 while the database circuit breaker is open or half-open, else 0."}),
		BreakerOpens: prometheus.NewCounter(prometheus.CounterOpts{Name: "foodpipe_db_breaker_opens_total",
			Help: "Times the database circuit breaker opened: one batch failed CONSUMER_DB_RETRIES retries."}),
		Rebalances: prometheus.NewCounter(prometheus.CounterOpts{Name: "foodpipe_rebalances_total",
			Help: "Partition assignments and revocations this process went through."}),
		Fenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "foodpipe_fenced_batches_total",
			Help: "Batches the offset fence refused because another member had stored past them."}),
		DLQPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "foodpipe_dlq_pending",
			Help: "Dead letters this process found recorded but not yet published at its last attempt."}),
		DatabaseAway: prometheus.NewGauge(prometheus.GaugeOpts{Name: "foodpipe_database_away",
			Help: "1 while the consumer is out of its group because the database has not taken a batch for 15 s, or waits at start for the database to answer, else 0."}),
		MessagesExpired: prometheus.NewCounter(prometheus.CounterOpts{Name: "foodpipe_messages_expired_total",
			Help: "Messages Kafka deleted (the topic's retention passed) before the group read them: lost unread, neither stored nor dead-lettered."}),
		NotifySent: prometheus.NewCounter(prometheus.CounterOpts{Name: "foodpipe_notify_sent_total",
			Help: "Order emails the mail server took (250 to the end of DATA)."}),
		NotifyRetried: prometheus.NewCounter(prometheus.CounterOpts{Name: "foodpipe_notify_retried_total",
			Help: "Attempts to hand emails to the mail server that failed (down, 4xx, timeout) and are retried."}),
		NotifyRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "foodpipe_notify_refused_total",
			Help: "Addresses the mail server refused for good (5xx to RCPT TO): failed, set aside as dead letters."}),
		NotifyInDoubt: prometheus.NewCounter(prometheus.CounterOpts{Name: "foodpipe_notify_in_doubt_total",
			Help: "Emails sent again because a notifier ended between sending and recording them: the bound on duplicates at the receiver."}),
		NotifyReceiverDuplicates: prometheus.NewGauge(prometheus.GaugeOpts{Name: "foodpipe_notify_receiver_duplicates",
			Help: "Emails the receiving mail server holds that repeat a Message-ID it received before, read from its REST API (MAIL_API_URL) every STATS_INTERVAL."}),
	}
	var own prometheus.Registerer = reg
	if o.Group != "" {
		own = prometheus.WrapRegistererWith(prometheus.Labels{"group": o.Group}, reg)
	}
	own.MustRegister(m.OrdersProduced, m.OrdersProcessed, m.OrdersDuplicate, m.OrdersInvalid, m.DLQ,
		m.DBBatchSeconds, m.E2ELatency, m.DeliveryLatency, m.ConsumerLag, m.PartitionOwned, m.BreakerOpen, m.BreakerOpens, m.Rebalances, m.Fenced, m.DLQPending, m.DatabaseAway,
		m.MessagesExpired, m.NotifySent, m.NotifyRetried, m.NotifyRefused, m.NotifyInDoubt)
	// Registered when a notifier watches its receiver (notify.WatchReceiver),
	// so that no other process exports a figure it never reads.
	// Every reason starts at 0. Otherwise a reason's series appears only with
	// its first message, so rate() and increase() see nothing until the
	// second, the sums of the alerts and the dashboard have no series at all
	// until some order is invalid, and the jump from nothing to 1 is never
	// counted.
	for _, r := range o.InvalidReasons {
		m.OrdersInvalid.WithLabelValues(r)
	}
	return m
}

// LatencyTarget is the p99 target from an order's hand-over to Kafka to its
// stored row (foodpipe_delivery_latency_seconds, FoodpipeEndToEndLatencyHigh;
// docs/PERFORMANCE.md): the end-to-end latency less the wait the producer
// chooses (PRODUCER_LINGER). A bound of the latency histograms' buckets.
const LatencyTarget = 25 * time.Millisecond

// Partition is the label value of a partition.
func Partition(p int32) string { return strconv.Itoa(int(p)) }
