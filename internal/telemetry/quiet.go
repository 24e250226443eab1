package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// RepeatWindow is how often at most a repeated error is logged.
const RepeatWindow = 30 * time.Second

// RepeatedAttr is the attribute a repeated error's line carries: how many
// lines like it were held back since the last one logged.
const RepeatedAttr = "repeated_since_last"

// Quiet wraps h so that an error that repeats is logged once per window: a
// record at WARN or above with an "err" attribute that matches one logged
// less than window ago (same level, message, error text and logger
// attributes) is counted instead of logged, and the next one logged carries
// the count in RepeatedAttr. Everything else passes through as it is: lines
// about orders, batches and dead letters are each worth their line, and a
// fault that comes back after a quiet window is said again.
func Quiet(h slog.Handler, window time.Duration) slog.Handler {
	return quiet{h: h, state: &quietState{window: window, seen: map[string]*repeat{}, now: time.Now}}
}

type quiet struct {
	h     slog.Handler
	scope string // the attributes and groups added to this logger, as text
	state *quietState
}

type quietState struct {
	mu     sync.Mutex
	window time.Duration
	seen   map[string]*repeat
	now    func() time.Time
}

type repeat struct {
	logged time.Time
	held   int
}

// maxRepeats bounds the errors remembered; older ones are forgotten first.
const maxRepeats = 1000

func (q quiet) Enabled(ctx context.Context, l slog.Level) bool { return q.h.Enabled(ctx, l) }

func (q quiet) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return q.h.Handle(ctx, r)
	}
	errText, ok := "", false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			errText, ok = a.Value.String(), true
			return false
		}
		return true
	})
	if !ok {
		return q.h.Handle(ctx, r)
	}
	key := q.scope + "\x00" + r.Level.String() + "\x00" + r.Message + "\x00" + errText
	held, pass := q.state.note(key)
	if !pass {
		return nil
	}
	if held > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int(RepeatedAttr, held))
	}
	return q.h.Handle(ctx, r)
}

// note counts one more record under key and says whether to log it, with
// how many like it were held back since the last logged.
func (s *quietState) note(key string) (held int, pass bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if rep := s.seen[key]; rep != nil {
		if now.Sub(rep.logged) < s.window {
			rep.held++
			return 0, false
		}
		held = rep.held
	}
	if len(s.seen) >= maxRepeats {
		for k, rep := range s.seen {
			if now.Sub(rep.logged) >= s.window {
				delete(s.seen, k)
			}
		}
		if len(s.seen) >= maxRepeats {
			clear(s.seen)
		}
	}
	s.seen[key] = &repeat{logged: now}
	return held, true
}

func (q quiet) WithAttrs(as []slog.Attr) slog.Handler {
	scope := q.scope
	for _, a := range as {
		scope += "\x00" + a.String()
	}
	return quiet{h: q.h.WithAttrs(as), scope: scope, state: q.state}
}

func (q quiet) WithGroup(name string) slog.Handler {
	return quiet{h: q.h.WithGroup(name), scope: q.scope + "\x00" + name + ".", state: q.state}
}
