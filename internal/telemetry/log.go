// Package telemetry sets up what operators see of foodpipe: JSON logs through
// log/slog, and the conventions log lines follow (every line about an order
// carries order_id, so one order can be traced from producer to database).
package telemetry

import (
	"io"
	"log/slog"
)

// NewLogger returns a JSON logger whose level can be changed after start-up,
// once the configuration that names it has been read.
func NewLogger(w io.Writer, level *slog.LevelVar) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// OrderID is the attribute that correlates every log line about one order.
func OrderID(id string) slog.Attr { return slog.String("order_id", id) }
