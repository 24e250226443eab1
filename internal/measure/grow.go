package measure

// The phases of a bench beyond the empty table: a table that is already
// full, a re-delivery onto stored orders, and the producer against the
// client's own limit. Each runs several rounds and reports the spread.

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/order"
	"foodpipe/internal/producer"
	"foodpipe/internal/store"
)

// Spread is one figure over repeated rounds.
type Spread struct {
	Min    float64   `json:"min"`
	Median float64   `json:"median"`
	Max    float64   `json:"max"`
	Rounds []float64 `json:"rounds"`
}

func spreadOf(vs []float64) Spread {
	if len(vs) == 0 {
		return Spread{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{Min: s[0], Median: med, Max: s[len(s)-1], Rounds: vs}
}

// BenchPrefill is draining into a table that already holds Rows orders,
// against a raw COPY of the same messages into the same full table.
type BenchPrefill struct {
	Rows        int    `json:"prefill_rows"`
	Copy        Spread `json:"copy_rows_per_s"`
	Drain       Spread `json:"drain_rows_per_s"`
	RatioToCopy Spread `json:"ratio_to_copy"`
	// RatioToEmpty is the median drain over the headline drain into an
	// empty table.
	RatioToEmpty float64 `json:"ratio_to_empty_drain"`
	PeakRSSMiB   float64 `json:"peak_rss_mib"`
	// Activity is what PostgreSQL did in the last drain round.
	Activity store.DBActivity `json:"db_activity"`
}

// BenchRedelivery is draining a topic half of whose orders are stored
// already (a replay after a lost commit), against a COPY of all of them
// into an empty table; and the same with conflicting copies stored.
type BenchRedelivery struct {
	Orders        int    `json:"orders"`
	AlreadyStored int    `json:"already_stored"`
	Drain         Spread `json:"drain_rows_per_s"`
	RatioToCopy   Spread `json:"ratio_to_copy"`
	// Conflicting is how many stored orders differ from their message in
	// the conflict rounds; each becomes a dead letter.
	Conflicting     int     `json:"conflicting"`
	ConflictDrain   Spread  `json:"conflict_drain_rows_per_s"`
	ConflictRatio   Spread  `json:"conflict_ratio_to_copy"`
	PeakRSSMiB      float64 `json:"peak_rss_mib"`
	StoredUnchanged bool    `json:"stored_rows_unchanged"`
}

// BenchProducerLimit is `foodpipe produce --rate 0` against franz-go
// producing pre-encoded records of the same size and keys, with the same
// client settings, in the same run: the client's limit.
type BenchProducerLimit struct {
	Orders   int    `json:"orders"`
	Producer Spread `json:"producer_per_s"`
	Client   Spread `json:"client_per_s"`
	Ratio    Spread `json:"ratio"`
}

// prefill measures the drain into a table of o.Prefill orders.
func (b *bench) prefill(ctx context.Context, o BenchOptions, rows []store.Row, emptyDrain float64) (BenchPrefill, error) {
	r := BenchPrefill{Rows: o.Prefill}
	fmt.Fprintf(b.out, "prefill   loading %d orders\n", o.Prefill)
	if err := b.st.Bench().Prefill(ctx, o.Prefill); err != nil {
		return r, err
	}
	want := int64(o.Prefill + len(rows))
	var copies, drains, ratios []float64
	for round := range o.Rounds {
		if err := b.st.Bench().ResetPrefilled(ctx); err != nil {
			return r, err
		}
		took, err := b.st.Bench().CopyBaseline(ctx, rows)
		if err != nil {
			return r, err
		}
		if err := b.st.Bench().ResetPrefilled(ctx); err != nil {
			return r, err
		}
		before, err := b.st.Bench().SettledActivity(ctx)
		if err != nil {
			return r, err
		}
		d, err := b.drainInto(ctx, "bench-3p", 3, 1, int64(len(rows)), want)
		if err != nil {
			return r, err
		}
		after, err := b.st.Bench().SettledActivity(ctx)
		if err != nil {
			return r, err
		}
		c := float64(len(rows)) / took.Seconds()
		copies, drains, ratios = append(copies, c), append(drains, d.RowsPerSec), append(ratios, d.RowsPerSec/c)
		r.PeakRSSMiB = max(r.PeakRSSMiB, d.PeakRSSMiB)
		r.Activity = after.Since(before)
		fmt.Fprintf(b.out, "prefill   round %d: copy %.0f rows/s, drain %.0f rows/s (%.2f of COPY), WAL %.0f MiB, hit ratio %.3f\n",
			round+1, c, d.RowsPerSec, d.RowsPerSec/c, float64(r.Activity.WALBytes)/(1<<20), r.Activity.HitRatio)
	}
	r.Copy, r.Drain, r.RatioToCopy = spreadOf(copies), spreadOf(drains), spreadOf(ratios)
	if emptyDrain > 0 {
		r.RatioToEmpty = r.Drain.Median / emptyDrain
	}
	return r, b.st.Bench().Reset(ctx)
}

// redelivery measures draining onto stored orders: half of them, in runs
// of 1,000 and scattered, stored as they are; then a tenth stored with
// other content, which the consumer must leave alone and dead-letter.
func (b *bench) redelivery(ctx context.Context, o BenchOptions, rows []store.Row, copyRate float64) (BenchRedelivery, error) {
	r := BenchRedelivery{Orders: len(rows), StoredUnchanged: true}
	var same, differing []store.Row
	for i, row := range rows {
		if (i/1000)%4 == 0 || i%3 == 0 {
			same = append(same, row)
		}
		if i%10 == 5 {
			row.Order.Status = order.StatusDelivered
			differing = append(differing, row)
		}
	}
	r.AlreadyStored, r.Conflicting = len(same), len(differing)
	run := func(stored []store.Row) (BenchDrain, error) {
		if err := b.st.Bench().Reset(ctx); err != nil {
			return BenchDrain{}, err
		}
		if _, err := b.st.Bench().CopyBaseline(ctx, stored); err != nil {
			return BenchDrain{}, err
		}
		since := time.Now()
		d, err := b.drainInto(ctx, "bench-3p", 3, 1, int64(len(rows)), int64(len(rows)))
		if err != nil {
			return d, err
		}
		// What was stored before the drain is still there, untouched.
		if kept, err := b.st.Bench().StoredBefore(ctx, since, string(stored[0].Order.Status)); err != nil {
			return d, err
		} else if kept != int64(len(stored)) {
			r.StoredUnchanged = false
		}
		return d, nil
	}
	var drains, ratios, cdrains, cratios []float64
	for round := range o.Rounds {
		d, err := run(same)
		if err != nil {
			return r, err
		}
		c, err := run(differing)
		if err != nil {
			return r, err
		}
		drains, ratios = append(drains, d.RowsPerSec), append(ratios, d.RowsPerSec/copyRate)
		cdrains, cratios = append(cdrains, c.RowsPerSec), append(cratios, c.RowsPerSec/copyRate)
		r.PeakRSSMiB = max(r.PeakRSSMiB, d.PeakRSSMiB, c.PeakRSSMiB)
		fmt.Fprintf(b.out, "redeliver round %d: %d of %d stored: %.0f rows/s (%.2f of COPY); %d conflicting: %.0f rows/s (%.2f)\n",
			round+1, len(same), len(rows), d.RowsPerSec, d.RowsPerSec/copyRate, len(differing), c.RowsPerSec, c.RowsPerSec/copyRate)
	}
	r.Drain, r.RatioToCopy = spreadOf(drains), spreadOf(ratios)
	r.ConflictDrain, r.ConflictRatio = spreadOf(cdrains), spreadOf(cratios)
	return r, b.st.Bench().Reset(ctx)
}

// producerLimit measures the producer against the client at its limit.
func (b *bench) producerLimit(ctx context.Context, o BenchOptions) (BenchProducerLimit, error) {
	r := BenchProducerLimit{Orders: o.Orders}
	var prod, client, ratios []float64
	for round := range o.Rounds {
		cfg := b.cfg
		cfg.Topic, cfg.Partitions, cfg.ProducerRate = fmt.Sprintf("bench-produce-%d", round), 3, 0
		cl, err := b.pl.ProducerClient(ctx, cfg, nil)
		if err != nil {
			return r, err
		}
		p := producer.New(cl, order.NewGenerator(uint64(round), nil), producer.Config{Topic: cfg.Topic, Count: o.Orders}, b.log)
		start := time.Now()
		err = p.Run(ctx)
		pTook := time.Since(start)
		cl.Close()
		if err != nil {
			return r, fmt.Errorf("produce: %w", err)
		}
		cfg.Topic = fmt.Sprintf("bench-client-%d", round)
		cTook, err := b.clientLimit(ctx, cfg.Topic, uint64(round), o.Orders)
		if err != nil {
			return r, err
		}
		// The embedded broker keeps every message in memory: a round's
		// topics are deleted, so that the next one does not pay for them.
		if err := b.deleteTopics(ctx, fmt.Sprintf("bench-produce-%d", round), cfg.Topic); err != nil {
			return r, err
		}
		pr, cr := float64(o.Orders)/pTook.Seconds(), float64(o.Orders)/cTook.Seconds()
		prod, client, ratios = append(prod, pr), append(client, cr), append(ratios, pr/cr)
		fmt.Fprintf(b.out, "producer  round %d: foodpipe produce %.0f/s, the client with pre-encoded records %.0f/s (%.2f)\n", round+1, pr, cr, pr/cr)
	}
	r.Producer, r.Client, r.Ratio = spreadOf(prod), spreadOf(client), spreadOf(ratios)
	return r, nil
}

// deleteTopics deletes topics the bench is done with.
func (b *bench) deleteTopics(ctx context.Context, topics ...string) error {
	adm, done, err := b.pl.Admin(ctx)
	if err != nil {
		return err
	}
	defer done()
	resp, err := adm.DeleteTopics(ctx, topics...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("delete topics %v: %w", topics, err)
	}
	return nil
}

// clientLimit produces n records made beforehand from the orders the
// producer would make (same keys, values and header) with the producer's
// client settings, and returns how long the client took.
func (b *bench) clientLimit(ctx context.Context, topic string, seed uint64, n int) (time.Duration, error) {
	cfg := b.cfg
	cfg.Topic, cfg.ProducerRate = topic, 0
	cl, err := b.pl.ProducerClient(ctx, cfg, nil)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	gen := order.NewGenerator(seed, nil)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		o := gen.Next()
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(o.CustomerID), Value: o.AppendJSON(nil),
			Headers: []kgo.RecordHeader{{Key: order.HeaderOrderID, Value: []byte(o.OrderID)}}}
	}
	// One promise for all, and Flush to wait: the least a caller of the
	// client can do per record.
	var failed atomic.Pointer[error]
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	start := time.Now()
	for _, rec := range recs {
		cl.Produce(ctx, rec, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, fmt.Errorf("produce pre-encoded records: %w", err)
	}
	took := time.Since(start)
	if err := failed.Load(); err != nil {
		return 0, fmt.Errorf("produce pre-encoded records: %w", *err)
	}
	return took, nil
}
