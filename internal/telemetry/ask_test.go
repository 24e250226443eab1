package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestHealthURLAsksAServerOnEveryInterfaceLocally(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"127.0.0.1:9100", "http://127.0.0.1:9100/readyz"},
		{":9100", "http://127.0.0.1:9100/readyz"},
		{"0.0.0.0:9100", "http://127.0.0.1:9100/readyz"},
		{"[::]:9100", "http://127.0.0.1:9100/readyz"},
		{"[::1]:9100", "http://[::1]:9100/readyz"},
		{"consumer-1:9100", "http://consumer-1:9100/readyz"},
	}
	for _, tt := range tests {
		if got, err := HealthURL(tt.addr, "/readyz"); err != nil || got != tt.want {
			t.Errorf("HealthURL(%q) = %q, %v; want %q", tt.addr, got, err, tt.want)
		}
	}
	if _, err := HealthURL("9100", "/healthz"); err == nil {
		t.Error("an address without a port is taken")
	}
}

// A server that is alive but not ready answers /healthz and fails /readyz;
// one that is gone fails both.
func TestAskHealthFailsUnlessTheServerAnswers2xx(t *testing.T) {
	srv, err := Listen("127.0.0.1:0", NewMetrics(Options{}).Registry, func(context.Context) error { return errors.New("starting") }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	healthz, _ := HealthURL(srv.Addr(), "/healthz")
	readyz, _ := HealthURL(srv.Addr(), "/readyz")
	if status, err := AskHealth(ctx, healthz); err != nil || status != "200 OK" {
		t.Errorf("alive: %q, %v", status, err)
	}
	if _, err := AskHealth(ctx, readyz); err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), readyz) {
		t.Errorf("not ready: %v, want an error naming %s and 503", err, readyz)
	}
	srv.Close()
	if _, err := AskHealth(ctx, healthz); err == nil {
		t.Error("a server that is gone answered")
	}
}
