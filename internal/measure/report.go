package measure

// What a bench reports and how it is held against the targets.

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// BenchReport is everything `foodpipe bench` measured in one run.
type BenchReport struct {
	Machine   BenchMachine `json:"machine"`
	Orders    int          `json:"orders"`
	BatchSize int          `json:"batch_size"`
	Writers   int          `json:"writers"`
	// Autovacuum says whether PostgreSQL's autovacuum was left on.
	Autovacuum bool `json:"autovacuum"`
	// Copy and Drain are the middle of their rounds; the spreads are
	// rows/s (and drain/COPY) over all of them.
	Copy        BenchRate      `json:"copy"`
	CopySpread  Spread         `json:"copy_rows_per_s"`
	Drain       BenchDrain     `json:"drain"`
	DrainSpread Spread         `json:"drain_rows_per_s"`
	RatioSpread Spread         `json:"drain_ratio_to_copy"`
	Producer    BenchProducer  `json:"producer"`
	Latency     []BenchLatency `json:"latency"`
	Scaling     []BenchDrain   `json:"scaling"`
	// The phases beyond the empty table, when asked for.
	Prefill       *BenchPrefill       `json:"prefill,omitempty"`
	Redelivery    *BenchRedelivery    `json:"redelivery,omitempty"`
	ProducerLimit *BenchProducerLimit `json:"producer_limit,omitempty"`
	Dial          *BenchDial          `json:"latency_dial,omitempty"`
	LowRate       *BenchLowRate       `json:"low_rate,omitempty"`
	Protocols     *BenchProtocols     `json:"protocols,omitempty"`
	Targets       []BenchTarget       `json:"targets"`
}

// BenchMachine says where the figures come from.
type BenchMachine struct {
	CPUs       int    `json:"cpus"`
	Go         string `json:"go"`
	PostgreSQL string `json:"postgresql"`
	Database   string `json:"database"`
}

// BenchRate is rows stored in a time.
type BenchRate struct {
	Rows       int64   `json:"rows"`
	Seconds    float64 `json:"seconds"`
	RowsPerSec float64 `json:"rows_per_s"`
}

// BenchDrain is consumers draining a preloaded topic into empty tables.
type BenchDrain struct {
	Partitions int `json:"partitions"`
	Consumers  int `json:"consumers"`
	BenchRate
	// RatioToCopy is RowsPerSec over the raw COPY's.
	RatioToCopy float64 `json:"ratio_to_copy"`
	// CPUMicrosPerOrder is the consumers' user and system CPU per order
	// (PostgreSQL's own CPU is not in it).
	CPUMicrosPerOrder float64 `json:"cpu_us_per_order"`
	// PeakRSSMiB is the largest consumer's peak resident set.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// BenchProducer is the producer's highest rate and its accuracy at fixed rates.
type BenchProducer struct {
	MaxRate float64             `json:"max_rate"`
	Fixed   []BenchProducerRate `json:"fixed"`
}

// BenchProducerRate is one fixed rate: asked, achieved (acknowledged orders
// over the run's duration) and the error in percent.
type BenchProducerRate struct {
	Target   float64 `json:"target"`
	Achieved float64 `json:"achieved"`
	ErrorPct float64 `json:"error_pct"`
}

// BenchLatency is end-to-end latency (created_at to processed_at) at one rate.
type BenchLatency struct {
	Rate       float64 `json:"rate"`
	Orders     int64   `json:"orders"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	PeakRSSMiB float64 `json:"consumer_peak_rss_mib"`
	// P99Spread is p99 over the rounds; the figures above are the middle round's.
	P99Spread Spread `json:"p99_ms_spread"`
}

// BenchTarget is one target of the performance goals and whether it was met.
type BenchTarget struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

func rateOf(n int64, d time.Duration) BenchRate {
	return BenchRate{Rows: n, Seconds: d.Seconds(), RowsPerSec: float64(n) / d.Seconds()}
}

// JudgeBench holds the report against the performance targets.
func JudgeBench(r BenchReport) []BenchTarget {
	ts := []BenchTarget{{
		Name: "drain, 1 consumer, vs raw COPY", Want: "≥ 0.80",
		Got: fmt.Sprintf("%.2f", r.Drain.RatioToCopy), Met: r.Drain.RatioToCopy >= 0.8,
	}}
	rss := func(phase string, mib float64) BenchTarget {
		return BenchTarget{Name: "consumer peak RSS, " + phase, Want: "≤ 64 MiB", Got: fmt.Sprintf("%.1f MiB", mib), Met: mib <= 64}
	}
	ts = append(ts, rss("the drain", r.Drain.PeakRSSMiB))
	if len(r.Scaling) > 0 {
		most := slices.MaxFunc(r.Scaling, func(a, b BenchDrain) int { return cmp.Compare(a.PeakRSSMiB, b.PeakRSSMiB) })
		consumers := fmt.Sprintf("%d consumers", most.Consumers)
		if most.Consumers == 1 {
			consumers = "1 consumer"
		}
		ts = append(ts, rss(fmt.Sprintf("every drain (largest: %d partitions, %s)", most.Partitions, consumers), most.PeakRSSMiB))
	}
	if p := r.Prefill; p != nil {
		ts = append(ts, BenchTarget{Name: fmt.Sprintf("drain into %d orders, vs COPY into them (median)", p.Rows), Want: "≥ 0.80",
			Got: fmt.Sprintf("%.2f", p.RatioToCopy.Median), Met: p.RatioToCopy.Median >= 0.8}, rss("full table", p.PeakRSSMiB))
	}
	if d := r.Redelivery; d != nil {
		ts = append(ts, BenchTarget{Name: "re-delivery, half stored, vs COPY (median)", Want: "≥ 0.50, stored rows unchanged",
			Got: fmt.Sprintf("%.2f, unchanged %v", d.RatioToCopy.Median, d.StoredUnchanged), Met: d.RatioToCopy.Median >= 0.5 && d.StoredUnchanged},
			rss("re-delivery", d.PeakRSSMiB))
	}
	if p := r.ProducerLimit; p != nil {
		ts = append(ts, BenchTarget{Name: "producer vs the client's limit (median)", Want: "≥ 0.80",
			Got: fmt.Sprintf("%.2f", p.Ratio.Median), Met: p.Ratio.Median >= 0.8})
	}
	if r.LowRate != nil {
		ts = append(ts, lowRateTargets(r.LowRate)...)
	}
	if r.Protocols != nil {
		ts = append(ts, protocolTargets(r.Protocols)...)
	}
	for _, l := range r.Latency {
		switch l.Rate {
		case 10:
			ts = append(ts, BenchTarget{Name: "consumer peak RSS at 10 orders/s", Want: "≤ 64 MiB",
				Got: fmt.Sprintf("%.1f MiB", l.PeakRSSMiB), Met: l.PeakRSSMiB <= 64})
		case 1000:
			ts = append(ts, BenchTarget{Name: "end-to-end p99 at 1,000 orders/s", Want: "≤ 5 ms",
				Got: fmt.Sprintf("%.1f ms", l.P99ms), Met: l.P99ms <= 5})
		}
	}
	return ts
}
