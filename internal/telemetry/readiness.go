package telemetry

import (
	"context"
	"sync"
)

// Readiness is what /readyz asks of a process that takes a while to start
// (Check is Listen's ready): why it is not ready yet while it starts
// (NotYet), then, once it runs, its own check (Set). The zero value is
// ready, with nothing to say; safe for concurrent use.
type Readiness struct {
	mu    sync.Mutex
	why   error
	ready func(context.Context) error
}

// NotYet says why the process is not ready yet, until Set.
func (r *Readiness) NotYet(why error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.why = why
}

// Set hands over to the running process's own check.
func (r *Readiness) Set(ready func(context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ready = ready
}

// Check is nil when the process is ready, else why not.
func (r *Readiness) Check(ctx context.Context) error {
	r.mu.Lock()
	why, ready := r.why, r.ready
	r.mu.Unlock()
	if ready == nil {
		return why
	}
	return ready(ctx)
}
