package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"foodpipe/internal/config"
	"foodpipe/internal/telemetry"
	"foodpipe/internal/wire"
)

func TestHealthAsksTheMetricsServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()

	ok := newRun(t, "METRICS_ADDR", addr)
	if err := ok.do(ctx, "health"); err != nil || !strings.Contains(ok.stdout.String(), "200") {
		t.Fatalf("healthy server: err %v, output %q", err, ok.stdout.String())
	}
	notReady := newRun(t, "METRICS_ADDR", addr)
	if err := notReady.do(ctx, "health", "--path", "/readyz"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("a 503 must fail the check: %v", err)
	}
	srv.Close()
	down := newRun(t, "METRICS_ADDR", addr)
	if err := down.do(ctx, "health"); err == nil {
		t.Fatal("a server that is down must fail the check")
	}
	unset := newRun(t)
	if err := unset.do(ctx, "health"); !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "METRICS_ADDR") {
		t.Fatalf("without METRICS_ADDR: %v", err)
	}
	if err := unset.do(ctx, "health", "--metrics-addr", ":1", "--path", "healthz"); !errors.Is(err, ErrUsage) {
		t.Fatalf("a path without a slash: %v", err)
	}
}

// foodpipe version tells the build the binary carries, as text and as JSON,
// whatever the configuration says (a broken one included).
func TestVersionPrintsTheBuild(t *testing.T) {
	want := telemetry.Build()
	r := newRun(t, "KAFKA_PARTITIONS", "not a number")
	if err := r.do(context.Background(), "version"); err != nil {
		t.Fatalf("version: %v", err)
	}
	if line := fmt.Sprintf("foodpipe %s (revision %s", want.Version, want.Revision); !strings.HasPrefix(r.stdout.String(), line) {
		t.Errorf("version printed %q, want it to begin %q", r.stdout.String(), line)
	}
	j := newRun(t)
	if err := j.do(context.Background(), "version", "--json"); err != nil {
		t.Fatalf("version --json: %v", err)
	}
	var got telemetry.BuildInfo
	if err := json.Unmarshal([]byte(j.stdout.String()), &got); err != nil || got != want {
		t.Errorf("version --json printed %q (%v), want %+v", j.stdout.String(), err, want)
	}
	if err := newRun(t).do(context.Background(), "version", "extra"); !errors.Is(err, ErrUsage) {
		t.Errorf("version with an argument: %v, want a usage error", err)
	}
}

// A server started on port 0 writes the address it took to METRICS_ADDR_FILE,
// and foodpipe health finds it there: replicas sharing the host's network
// each take a free port, and their health checks still reach their own.
func TestHealthFindsTheServerThroughTheAddressFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "metrics-addr")
	m := wire.NewMetrics("")
	stop, err := wire.ServeMetrics(config.Config{MetricsAddr: "127.0.0.1:0", MetricsAddrFile: file}, m.Registry,
		func(context.Context) error { return nil }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	b, err := os.ReadFile(file)
	if err != nil || strings.HasSuffix(strings.TrimSpace(string(b)), ":0") {
		t.Fatalf("address file %q: %v", b, err)
	}
	r := newRun(t, "METRICS_ADDR", "127.0.0.1:0", "METRICS_ADDR_FILE", file)
	if err := r.do(context.Background(), "health"); err != nil || !strings.Contains(r.stdout.String(), strings.TrimSpace(string(b))) {
		t.Fatalf("health through the file: %v, %q", err, r.stdout.String())
	}
	missing := newRun(t, "METRICS_ADDR", "127.0.0.1:0", "METRICS_ADDR_FILE", file+".none")
	if err := missing.do(context.Background(), "health"); err == nil || !strings.Contains(err.Error(), "METRICS_ADDR_FILE") {
		t.Fatalf("a missing address file: %v", err)
	}
}
