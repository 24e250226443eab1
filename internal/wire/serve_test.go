package wire_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"testing"

	"foodpipe/internal/config"
	"foodpipe/internal/wire"
)

// With METRICS_ADDR a process serves its health until stopped; without, it
// serves nothing.
func TestServeMetricsServesOnMetricsAddrOnly(t *testing.T) {
	ready := func(context.Context) error { return nil }
	stop, err := wire.ServeMetrics(config.Config{}, wire.NewMetrics("").Registry, ready, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	stop()
	var log bytes.Buffer
	stop, err = wire.ServeMetrics(config.Config{MetricsAddr: "127.0.0.1:0"}, wire.NewMetrics("").Registry, ready, slog.New(slog.NewJSONHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`"addr":"([^"]+)"`).FindStringSubmatch(log.String())
	if m == nil {
		stop()
		t.Fatalf("no address logged: %s", log.String())
	}
	resp, err := http.Get("http://" + m[1] + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz = %d", resp.StatusCode)
	}
	stop()
	if resp, err := http.Get("http://" + m[1] + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("still served after stop")
	}
}
