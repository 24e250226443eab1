package pipeline

import "errors"

var (
	// ErrNoChildBroker: only a broker the harness runs as a child process can be restarted.
	ErrNoChildBroker = errors.New("the broker is not a child of this pipeline")
)
