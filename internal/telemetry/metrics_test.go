package telemetry

import (
	"slices"
	"testing"

	"foodpipe/internal/dlq"
	"foodpipe/internal/order"
)

// A new process already exports foodpipe_orders_invalid_total at 0 for every
// reason, so that rate(), increase() and the sums of the alerts and the
// dashboard have series before the first invalid order.
func TestEveryInvalidReasonStartsAtZero(t *testing.T) {
	m := NewMetrics()
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
	want := []string{dlq.ReasonConflict, dlq.ReasonRejected}
	for _, r := range order.Reasons {
		want = append(want, string(r))
	}
	if len(got) != len(want) {
		t.Errorf("%d reasons exported, want %d: %v", len(got), len(want), got)
	}
	for _, r := range want {
		v, ok := got[r]
		if !ok || v != 0 {
			t.Errorf("reason %s: exported %v, value %v; want a 0", r, ok, v)
		}
	}
	if !slices.Contains(InvalidReasons(), string(order.ReasonNotJSON)) {
		t.Errorf("InvalidReasons() = %v", InvalidReasons())
	}
	// Counting still works from there.
	m.OrdersInvalid.WithLabelValues(string(order.ReasonNotJSON)).Inc()
	families, _ = m.Registry.Gather()
	for _, f := range families {
		for _, s := range f.GetMetric() {
			if f.GetName() == "foodpipe_orders_invalid_total" && s.GetLabel()[0].GetValue() == "not_json" && s.GetCounter().GetValue() != 1 {
				t.Errorf("not_json counts %v after one", s.GetCounter().GetValue())
			}
		}
	}
}
