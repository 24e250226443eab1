package harness

import "errors"

var (
	// ErrNoChildBroker: only a broker the harness runs as a child process can be restarted.
	ErrNoChildBroker = errors.New("the broker is not a child of this pipeline")
	// ErrNoMetricsAddr: the child was started without a METRICS_ADDR, so it serves no metrics.
	ErrNoMetricsAddr = errors.New("the child serves no metrics (no METRICS_ADDR)")
	// ErrStillRunning: a member is restarted only once it has ended.
	ErrStillRunning = errors.New("the process is still running")
)
