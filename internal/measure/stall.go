package measure

// One way to measure a stall, for `foodpipe bench --protocols` and the kill
// storms in e2e: sample the topic's end offsets and the orders table, and
// call the stretches with orders on the topic not yet in the table and no
// new row stored a stall, for the whole pipeline and for each partition.

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"foodpipe/internal/store"
)

// StallEvery is how often a StallWatch samples: a stall is known to within it.
const StallEvery = 100 * time.Millisecond

// Stall is a stretch of time in which orders waited on the topic (lag > 0)
// and no new row was stored: of the whole pipeline (Partition -1), or of
// one partition, whatever the others did.
type Stall struct {
	Partition int32
	From      time.Time
	Took      time.Duration
}

// End is when the stall ended.
func (s Stall) End() time.Time { return s.From.Add(s.Took) }

// StallWatch samples a pipeline every StallEvery until Close. It counts the
// rows of the orders table partition by partition, so the table must hold
// only the orders of the topic it watches (a run's own, as a bench's or a
// test's database does).
type StallWatch struct {
	mu     sync.Mutex
	stalls []Stall             // the whole pipeline's, ended
	parts  []Stall             // each partition's, ended
	since  time.Time           // start of the pipeline's stall under way; zero when flowing
	psince map[int32]time.Time // start of each partition's stall under way
	stop   chan struct{}
	done   chan struct{}
}

// WatchStalls starts sampling topic's end offsets (through adm) and st's
// orders, until Close.
func WatchStalls(adm *kadm.Client, st *store.Store, topic string) *StallWatch {
	w := &StallWatch{psince: map[int32]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	go w.run(adm, st, topic)
	return w
}

func (w *StallWatch) run(adm *kadm.Client, st *store.Store, topic string) {
	defer close(w.done)
	var last int64 = -1
	lastPart := map[int32]int64{}
	tick := time.NewTicker(StallEvery)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			w.sample(time.Now(), true, nil) // ends the stalls under way
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ends, err := adm.ListEndOffsets(ctx, topic)
		var storedPart map[int32]int64
		if err == nil {
			storedPart, err = st.CountByPartition(ctx)
		}
		cancel()
		if err != nil {
			continue // a sample lost to load; the next one decides
		}
		var produced, stored int64
		flowing := map[int32]bool{}
		ends.Each(func(o kadm.ListedOffset) {
			n := storedPart[o.Partition]
			produced += o.Offset
			stored += n
			flowing[o.Partition] = n > lastPart[o.Partition] || n >= o.Offset
			lastPart[o.Partition] = n
		})
		w.sample(time.Now(), stored > last || stored >= produced, flowing)
		last = stored
	}
}

// sample ends the stalls under way of what flows (a new row, or no lag),
// and starts one for what does not; parts nil ends every partition's.
func (w *StallWatch) sample(now time.Time, flowing bool, parts map[int32]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, since := range w.psince {
		if parts == nil || parts[p] {
			w.parts = append(w.parts, Stall{Partition: p, From: since, Took: now.Sub(since)})
			delete(w.psince, p)
		}
	}
	for p, ok := range parts {
		if _, stalled := w.psince[p]; !ok && !stalled {
			w.psince[p] = now
		}
	}
	if flowing {
		if !w.since.IsZero() {
			w.stalls = append(w.stalls, Stall{Partition: -1, From: w.since, Took: now.Sub(w.since)})
			w.since = time.Time{}
		}
		return
	}
	if w.since.IsZero() {
		w.since = now
	}
}

// Close stops sampling and ends the stalls under way. Calling it again
// does nothing.
func (w *StallWatch) Close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Stalls are the whole pipeline's stalls of at least min, in order.
func (w *StallWatch) Stalls(min time.Duration) []Stall {
	w.mu.Lock()
	defer w.mu.Unlock()
	return atLeast(w.stalls, min)
}

// PartitionStalls are the partitions' stalls of at least min, each
// partition's in order.
func (w *StallWatch) PartitionStalls(min time.Duration) []Stall {
	w.mu.Lock()
	defer w.mu.Unlock()
	return atLeast(w.parts, min)
}

// Longest is the whole pipeline's longest stall (zero when none).
func (w *StallWatch) Longest() Stall { return longest(w.Stalls(0)) }

// LongestPartition is the longest stall of any one partition (zero when none).
func (w *StallWatch) LongestPartition() Stall { return longest(w.PartitionStalls(0)) }

// StalledAfter is how long after at the whole pipeline was still stalled:
// the end of the stall under way at at, 0 when it was flowing then.
func (w *StallWatch) StalledAfter(at time.Time) time.Duration {
	var d time.Duration
	for _, s := range w.Stalls(0) {
		if !s.From.After(at) && s.End().After(at) {
			d = max(d, s.End().Sub(at))
		}
	}
	return d
}

// PartitionsStopped is how many partitions began a stall of at least min
// between from and to: what a change of the group at from stopped.
func (w *StallWatch) PartitionsStopped(from, to time.Time, min time.Duration) int {
	stopped := map[int32]bool{}
	for _, s := range w.PartitionStalls(min) {
		if !s.From.Before(from) && s.From.Before(to) {
			stopped[s.Partition] = true
		}
	}
	return len(stopped)
}

// FlowingAgainAfter is how long after at every partition flowed again: the
// latest end of the stalls of at least min, of the pipeline or of a
// partition, that were under way at at or began within the next within. It
// is 0 when no such stall was.
func (w *StallWatch) FlowingAgainAfter(at time.Time, within, min time.Duration) time.Duration {
	var d time.Duration
	for _, s := range append(w.Stalls(min), w.PartitionStalls(min)...) {
		if s.End().After(at) && s.From.Before(at.Add(within)) {
			d = max(d, s.End().Sub(at))
		}
	}
	return d
}

func atLeast(ss []Stall, min time.Duration) []Stall {
	var out []Stall
	for _, s := range ss {
		if s.Took >= min {
			out = append(out, s)
		}
	}
	return out
}

func longest(ss []Stall) Stall {
	var l Stall
	for _, s := range ss {
		if s.Took > l.Took {
			l = s
		}
	}
	return l
}
