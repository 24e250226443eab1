package consumer

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"foodpipe/internal/dlq"
	"foodpipe/internal/store/dbtest"
	"foodpipe/internal/telemetry"
)

// Both groups read the same three messages that are no JSON. The orders
// group sets them aside for the dead-letter topic; the analytics group,
// whose store records no dead letters, skips them. Each counts them as
// invalid in its stats; only the dead letters count in
// foodpipe_orders_invalid_total, which means "set aside for the dead-letter
// topic".
func TestBothGroupsCountTheInvalidMessagesTheySetAside(t *testing.T) {
	if testing.Short() {
		t.Skip("slow (seconds of waiting or child processes): make test runs it")
	}
	c := newCluster(t, 1)
	st := dbtest.NewStore(t)
	_, valid := orders(7, 3)
	c.produce(t, append([]*kgo.Record{{Value: []byte("not json 1")}, {Value: []byte("not json 2")}, {Value: []byte("not json 3")}}, valid...)...)

	om, am := telemetry.NewMetrics(telemetry.Options{InvalidReasons: dlq.Reasons()}), telemetry.NewMetrics(telemetry.Options{InvalidReasons: dlq.Reasons()})
	var ol, al logs
	ords, _ := memberWith(t, c, st, "c1", &ol, func(cfg *Config) { cfg.Metrics = om })
	an, _ := memberWith(t, c, st.Analytics(), "a1", &al, func(cfg *Config) { cfg.Group, cfg.Metrics = analyticsGroup, am })
	eventually(t, "the valid orders to be stored and counted", func() bool { return count(t, st) == 3 && counted(t, st) == 3 })
	// The stats follow the batch's commit by a moment.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ords.Stats().Invalid == 3 && an.Stats().Invalid == 3 {
			break
		}
	}
	if n := ords.Stats().Invalid; n != 3 {
		t.Errorf("the orders group counts %d invalid, want 3", n)
	}
	if n := an.Stats().Invalid; n != 3 {
		t.Errorf("the analytics group counts %d invalid, want the 3 it skipped", n)
	}
	if n := testutil.ToFloat64(om.OrdersInvalid.WithLabelValues("not_json")); n != 3 {
		t.Errorf("the orders group's foodpipe_orders_invalid_total{reason=not_json} is %v, want 3", n)
	}
	if n := testutil.ToFloat64(am.OrdersInvalid.WithLabelValues("not_json")); n != 0 {
		t.Errorf("the analytics group's foodpipe_orders_invalid_total{reason=not_json} is %v, want 0: it sets nothing aside for the dead-letter topic", n)
	}
}
