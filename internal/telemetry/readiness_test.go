package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

// A member that starts says on /readyz why it is not ready yet, the latest
// reason first; once it runs, its own check answers.
func TestReadinessSaysWhyNotYetThenAsksTheRunningCheck(t *testing.T) {
	var r Readiness
	srv, err := Listen("127.0.0.1:0", NewMetrics(Options{}).Registry, r.Check, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url := "http://" + srv.Addr() + "/readyz"
	var readOnly atomic.Bool
	running := func(context.Context) error {
		if readOnly.Load() {
			return errors.New("the database is read-only")
		}
		return nil
	}
	steps := []struct {
		name     string
		do       func()
		wantCode int
		wantBody string
	}{
		{"starting, not yet ready, with why", func() { r.NotYet(errors.New("starting: connecting to PostgreSQL")) }, 503, "not ready: starting: connecting to PostgreSQL"},
		{"a later reason replaces the first", func() { r.NotYet(errors.New("starting: connecting to Kafka")) }, 503, "not ready: starting: connecting to Kafka"},
		{"running and its check passes", func() { r.Set(running) }, 200, "ready"},
		{"running and its check fails", func() { readOnly.Store(true) }, 503, "not ready: the database is read-only"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.do()
			if code, body := get(t, url); code != s.wantCode || strings.TrimSpace(body) != s.wantBody {
				t.Errorf("/readyz = %d %q, want %d %q", code, body, s.wantCode, s.wantBody)
			}
		})
	}
}

func TestReadinessWithNothingToSayIsReady(t *testing.T) {
	var r Readiness
	if err := r.Check(context.Background()); err != nil {
		t.Errorf("Check = %v, want nil", err)
	}
}
