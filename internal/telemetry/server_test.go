package telemetry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServerAnswersHealthReadinessAndMetrics(t *testing.T) {
	m := NewMetrics(Options{})
	var down atomic.Bool
	srv, err := Listen("127.0.0.1:0", m.Registry, func(context.Context) error {
		if down.Load() {
			return errors.New("database circuit breaker is open")
		}
		return nil
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	base := "http://" + srv.Addr()

	if code, body := get(t, base+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz while ready = %d", code)
	}
	down.Store(true)
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "circuit breaker is open") {
		t.Errorf("/readyz while not ready = %d %q, want 503 with the reason", code, body)
	}

	m.OrdersProcessed.Add(7)
	m.OrdersInvalid.WithLabelValues("not_json").Inc()
	m.ConsumerLag.WithLabelValues(Partition(2)).Set(11)
	m.PartitionOwned.WithLabelValues(Partition(2)).Set(1.7e9)
	_, body := get(t, base+"/metrics")
	for _, want := range []string{
		"foodpipe_orders_processed_total 7",
		`foodpipe_orders_invalid_total{reason="not_json"} 1`,
		`foodpipe_consumer_lag{partition="2"} 11`,
		`foodpipe_partition_owned_since_seconds{partition="2"} 1.7e+09`,
		"foodpipe_orders_produced_total 0",
		"foodpipe_orders_duplicate_total 0",
		"foodpipe_dlq_total 0",
		"foodpipe_db_batch_seconds_count 0",
		"foodpipe_e2e_latency_seconds_count 0",
		"foodpipe_db_breaker_open 0",
		"foodpipe_rebalances_total 0",
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestListenOnABusyAddressFailsNamingIt(t *testing.T) {
	first, err := Listen("127.0.0.1:0", NewMetrics(Options{}).Registry, func(context.Context) error { return nil }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = Listen(first.Addr(), NewMetrics(Options{}).Registry, func(context.Context) error { return nil }, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), first.Addr()) {
		t.Fatalf("error = %v, want one naming %s", err, first.Addr())
	}
}
