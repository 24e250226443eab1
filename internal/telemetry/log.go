// Package telemetry sets up what operators see of foodpipe: JSON logs through
// log/slog, and the conventions log lines follow (every line about an order
// carries order_id, so one order can be traced from producer to database).
//
// It is a leaf: it imports no other foodpipe package. What it must know of
// the domain, the reasons an order is refused, it is handed (Options).
package telemetry

import (
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// NewLogger returns a JSON logger whose level can be changed after start-up,
// once the configuration that names it has been read. Durations are written
// for a person to read ("1.2s", "7d"), not as nanoseconds: logs are read by
// people, and the machine-readable figures are in --json output and /metrics.
//
// An error that lasts is said once, then at most once per RepeatWindow with
// how often it came in between (see Quiet): a member waiting out a fault
// does not flood its log, nor the disk under it.
func NewLogger(w io.Writer, level *slog.LevelVar) *slog.Logger {
	return slog.New(Quiet(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: readableDuration}), RepeatWindow))
}

func readableDuration(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(Duration(a.Value.Duration()))
	}
	return a
}

// Duration spells d for a person: whole days as "7d", anything else as a Go
// duration rounded to what a reader can take in (three significant figures
// of seconds, milliseconds or microseconds: "1.23s", "2.92ms").
func Duration(d time.Duration) string {
	day := 24 * time.Hour
	switch a := d.Abs(); {
	case d != 0 && d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	case a >= 100*time.Second:
		return d.Round(time.Second).String()
	case a >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case a >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case a >= 100*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case a >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case a >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// OrderID is the attribute that correlates every log line about one order.
func OrderID(id string) slog.Attr { return slog.String("order_id", id) }

// Every calls fn every interval on its own goroutine until the returned stop
// function is called; a zero or negative interval never calls it. Producer
// and consumer log their counters with it.
func Every(interval time.Duration, fn func()) (stop func()) {
	if interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-finished }) }
}
