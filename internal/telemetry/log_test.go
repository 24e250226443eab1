package telemetry

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

func TestDurationsReadAsAPersonWouldWriteThem(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{7 * 24 * time.Hour, "7d"},
		{36 * time.Hour, "36h0m0s"},
		{1234 * time.Millisecond, "1.23s"},
		{2916684 * time.Nanosecond, "2.92ms"},
		{45 * time.Second, "45s"},
		{150*time.Second + 400*time.Millisecond, "2m30s"},
		{1500 * time.Nanosecond, "2µs"},
		{0, "0s"},
	}
	for _, tt := range tests {
		if got := Duration(tt.in); got != tt.want {
			t.Errorf("Duration(%d) = %q, want %q", int64(tt.in), got, tt.want)
		}
	}
}

func TestLogLinesCarryDurationsAsText(t *testing.T) {
	var buf bytes.Buffer
	NewLogger(&buf, new(slog.LevelVar)).Info("producer finished", slog.Duration("elapsed", 1234*time.Millisecond),
		slog.Group("config", slog.Duration("retention", 7*24*time.Hour)))
	var line struct {
		Elapsed string `json:"elapsed"`
		Config  struct {
			Retention string `json:"retention"`
		} `json:"config"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if line.Elapsed != "1.23s" || line.Config.Retention != "7d" {
		t.Errorf("durations in %s, want elapsed 1.23s and retention 7d", buf.String())
	}
}
