// Package telemetry sets up what operators see of foodpipe: JSON logs through
// log/slog, and the conventions log lines follow (every line about an order
// carries order_id, so one order can be traced from producer to database).
package telemetry

import (
	"io"
	"log/slog"
	"sync"
	"time"
)

// NewLogger returns a JSON logger whose level can be changed after start-up,
// once the configuration that names it has been read.
func NewLogger(w io.Writer, level *slog.LevelVar) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
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
