package telemetry

import (
	"slices"
	"testing"
)

// invalidSeries returns foodpipe_orders_invalid_total's series, by reason.
func invalidSeries(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "foodpipe_orders_invalid_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "reason" {
					got[l.GetValue()] = s.GetCounter().GetValue()
				}
			}
		}
	}
	return got
}

// A new process already exports foodpipe_orders_invalid_total at 0 for every
// reason it is handed, so that rate(), increase() and the sums of the alerts
// and the dashboard have series before the first invalid order. Which
// reasons there are is the caller's to say (wire.NewMetrics hands them all,
// and its test checks they are every reason a dead letter may carry).
func TestEveryInvalidReasonHandedStartsAtZero(t *testing.T) {
	reasons := []string{"not_json", "missing_field", "conflicting_duplicate"}
	m := NewMetrics(Options{InvalidReasons: reasons})
	got := invalidSeries(t, m)
	if len(got) != len(reasons) {
		t.Errorf("%d reasons exported, want %d: %v", len(got), len(reasons), got)
	}
	for _, r := range reasons {
		v, ok := got[r]
		if !ok || v != 0 {
			t.Errorf("reason %s: exported %v, value %v; want a 0", r, ok, v)
		}
	}
	// Counting still works from there, for a reason handed and one not.
	m.OrdersInvalid.WithLabelValues("not_json").Inc()
	m.OrdersInvalid.WithLabelValues("too_deep").Inc()
	got = invalidSeries(t, m)
	if got["not_json"] != 1 || got["too_deep"] != 1 || got["missing_field"] != 0 {
		t.Errorf("after one not_json and one too_deep: %v", got)
	}
}

func TestMetricsHandedNoReasonsExportNoInvalidSeries(t *testing.T) {
	if got := invalidSeries(t, NewMetrics(Options{})); len(got) != 0 {
		t.Errorf("exported %v, want no series", got)
	}
}

// The 25 ms target is a bucket bound of the latency histograms (the alert
// reads the delivery one), so that histogram_quantile tells a p99 under it
// from one over it.
func TestLatencyBucketsHaveTheTargetAsABound(t *testing.T) {
	m := NewMetrics(Options{})
	m.E2ELatency.Observe(0.020)
	m.DeliveryLatency.Observe(0.020)
	m.DBBatchSeconds.Observe(0.020)
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range fams {
		if !slices.Contains([]string{"foodpipe_e2e_latency_seconds", "foodpipe_delivery_latency_seconds", "foodpipe_db_batch_seconds"}, f.GetName()) {
			continue
		}
		seen++
		var bounds []float64
		for _, b := range f.GetMetric()[0].GetHistogram().GetBucket() {
			bounds = append(bounds, b.GetUpperBound())
		}
		if !slices.Contains(bounds, LatencyTarget.Seconds()) || !slices.IsSorted(bounds) {
			t.Errorf("%s buckets %v lack the target %v", f.GetName(), bounds, LatencyTarget.Seconds())
		}
	}
	if seen != 3 {
		t.Errorf("%d of the 3 latency histograms exported", seen)
	}
}
