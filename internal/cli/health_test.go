package cli

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
