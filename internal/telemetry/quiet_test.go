package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestQuietLogsARepeatedErrorOncePerWindowWithTheCount(t *testing.T) {
	var buf bytes.Buffer
	h := Quiet(slog.NewJSONHandler(&buf, nil), 30*time.Second)
	clock := time.Unix(0, 0)
	h.(quiet).state.now = func() time.Time { return clock }
	log := slog.New(h)
	member := log.With(slog.String("consumer", "c1"))
	other := log.With(slog.String("consumer", "c2"))
	lost := errors.New("UNKNOWN_TOPIC_ID")

	// A minute of an error every millisecond: 60,000 of them.
	for i := range 60_000 {
		clock = time.Unix(0, 0).Add(time.Duration(i) * time.Millisecond)
		member.Error("fetch error", slog.Int("partition", i%3), slog.Any("err", lost))
	}
	other.Error("fetch error", slog.Any("err", lost))                       // another member's says its own
	member.Error("fetch error", slog.Any("err", errors.New("another one"))) // another error is said
	member.Warn("message set aside", slog.String("error", "not json"))      // no err: never held
	member.Warn("message set aside", slog.String("error", "not json"))
	member.Info("duplicate order skipped", slog.Any("err", lost)) // below WARN: never held
	member.Info("duplicate order skipped", slog.Any("err", lost))

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	var fetch []map[string]any
	for _, l := range lines {
		if l["msg"] == "fetch error" && l["consumer"] == "c1" && l["err"] == "UNKNOWN_TOPIC_ID" {
			fetch = append(fetch, l)
		}
	}
	// At 0 s, 30 s: two lines for the minute, the second with the count
	// held back since the first.
	if len(fetch) != 2 {
		t.Fatalf("%d lines for the repeated error, want 2:\n%s", len(fetch), buf.String())
	}
	if _, ok := fetch[0][RepeatedAttr]; ok {
		t.Errorf("the first line carries a count: %v", fetch[0])
	}
	if got := fetch[1][RepeatedAttr]; got != float64(29_999) {
		t.Errorf("the second line says %v repeated, want 29999", got)
	}
	if want := 2 + 1 + 1 + 2 + 2; len(lines) != want {
		t.Errorf("%d lines in all, want %d:\n%s", len(lines), want, buf.String())
	}
}
