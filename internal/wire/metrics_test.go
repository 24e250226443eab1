package wire_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"foodpipe/internal/dlq"
	"foodpipe/internal/order"
	"foodpipe/internal/wire"
)

// A process's metrics export foodpipe_orders_invalid_total at 0 for every
// reason a dead letter may carry, the validation reasons of package order
// and the three the consumer gives itself, and for nothing else, so that
// docs/METRICS.md, the alerts and the dashboard meet every series from the
// start.
func TestEveryInvalidReasonStartsAtZero(t *testing.T) {
	want := []string{dlq.ReasonConflict, dlq.ReasonRejected, dlq.ReasonRefused}
	for _, r := range order.Reasons {
		want = append(want, string(r))
	}
	m := wire.NewMetrics("")
	if n := testutil.CollectAndCount(m.OrdersInvalid); n != len(want) {
		t.Errorf("%d reasons exported, want %d", n, len(want))
	}
	for _, r := range want {
		if v := testutil.ToFloat64(m.OrdersInvalid.WithLabelValues(r)); v != 0 {
			t.Errorf("reason %s is %v, want 0", r, v)
		}
	}
	if n := testutil.CollectAndCount(m.OrdersInvalid); n != len(want) {
		t.Errorf("%d reasons exported after reading each, want %d: one was not exported from the start", n, len(want))
	}
}
