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
// thread that looks for work, finds none and sleeps again; that was the
// larger part of their wake-ups and a sixth of their CPU at 100 orders/s
// (docs/PERFORMANCE.md, "Low rates", step 8). One processor runs the same
// goroutines in turn on one thread, and a drain, whose consumer spends
// about 3 µs of CPU per order while PostgreSQL takes the rows, keeps pace
// with a raw COPY all the same. A producer as fast as the broker takes
// (rate 0) is the one that needs every core, and is left on them.
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
