package e2e

import (
	"syscall"
	"testing"
	"time"
)

// The pipeline's long-running processes follow a topic on one processor
// (GOMAXPROCS=1), where a hand-off between goroutines wakes no second
// thread; GOMAXPROCS in their environment is the user's and is kept. Read
// from each process's own /metrics (the Go collector's
// go_sched_gomaxprocs_threads).
func TestFollowersRunOnOneProcessorUnlessTheEnvironmentSaysOtherwise(t *testing.T) {
	p := newPipeline(t)
	type member struct {
		name, metrics string
		env           []string
		args          []string
		want          float64
	}
	members := []member{
		{name: "consumer", args: []string{"consume", "--id", "c1"}, want: 1},
		{name: "consumer-told-two", env: []string{"GOMAXPROCS=2"}, args: []string{"consume", "--id", "c2"}, want: 2},
		{name: "analytics", args: []string{"analytics", "run", "--id", "a1"}, want: 1},
		{name: "producer", args: []string{"produce", "--rate", "10", "--duration", "1m"}, want: 1},
	}
	for i := range members {
		m := &members[i]
		m.metrics = freeAddr(t)
		pr := start(t, m.name, append(append(append([]string{}, p.env...), m.env...), "METRICS_ADDR="+m.metrics), m.args...)
		defer pr.stop(syscall.SIGTERM, 10*time.Second)
	}
	for _, m := range members {
		eventually(t, 30*time.Second, m.name+"'s metrics", func() bool {
			return metricValue(m.metrics, "go_sched_gomaxprocs_threads") > 0
		})
		if got := metricValue(m.metrics, "go_sched_gomaxprocs_threads"); got != m.want {
			t.Errorf("%s (%v, environment %v): GOMAXPROCS %v, want %v", m.name, m.args, m.env, got, m.want)
		}
	}
}
