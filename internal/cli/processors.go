package cli

import (
	"os"
	"runtime"
)

// followOnOneProcessor runs the rest of this process on one processor
// (GOMAXPROCS=1), for the long-running commands of a pipeline that follows
// a topic: broker, consume, analytics run, notify run, exporter, and produce
// at a steady rate.
//
// Following a topic at a few orders a second, such a process does a little
// work per order and then waits on the network. With more than one
// processor, each goroutine it readies on the way (a fetch answered, a
// round trip to PostgreSQL, a request of the Kafka client) wakes a second
// thread that looks for work, finds none and sleeps again; at 100 orders/s
// that was about half of the consumer's and the producer's wake-ups and a
// quarter of their CPU (docs/PERFORMANCE.md, "Low rates", step 8). One
// processor runs the same goroutines in turn on one thread. A drain, whose
// consumer spends about 3 µs of CPU per order while PostgreSQL takes the
// rows, is 5-8 % slower and still over its target against a raw COPY. A
// producer as fast as the broker takes (rate 0) is the one that needs
// every core, and is left on them.
//
// GOMAXPROCS in the environment is the user's choice and is kept. Only the
// process Main runs in is changed: a test that runs commands in its own
// process keeps its processors.
func (env *Env) followOnOneProcessor() {
	if !env.ownProcess {
		return
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		return
	}
	runtime.GOMAXPROCS(1)
}
