package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sync/errgroup"

	"foodpipe/internal/dlq"
	"foodpipe/internal/fault"
	"foodpipe/internal/order"
	"foodpipe/internal/store"
	"foodpipe/internal/telemetry"
)

// namedDuplicates is how many of a batch's duplicates the log names.
const namedDuplicates = 10

// pollBatches is how many batches one poll may take.
const pollBatches = 4

// MemoryLimit is the soft memory limit (as GOMEMLIMIT) that suits a
// consumer process writing batches of batchSize: 40 MiB, or 2 KiB for each
// record a poll may hold (the record and the order decoded from it), if that
// is more. Go's collector otherwise lets the heap grow to twice what is live
// after each collection, and a drain's fetches and batches come and go fast
// enough for that to double the process's footprint. Under the limit it
// collects sooner instead; the limit is soft: past it the heap grows rather
// than the collector taking more than half the CPU.
func MemoryLimit(batchSize int) int64 {
	return max(40<<20, int64(batchSize)*pollBatches*2<<10)
}

// prepared is a batch decoded and ready to write.
type prepared struct {
	recs  []*kgo.Record
	batch store.Batch
}

// process handles the records of one poll. Each partition's records are
// written in order, in batches of BatchSize, each batch in its own
// transaction with its dead letters; different partitions are written side
// by side, up to Writers at a time, so that PostgreSQL works on several
// COPYs at once while this process decodes the next batches. A poll of no
// more than one batch (a topic followed as it is written rather than
// drained) is one batch for all its partitions: one transaction, and one
// wait for the WAL to reach the disk, instead of one per partition. What
// was written is then committed to Kafka within commitEvery (commit.go).
//
// A batch the offset fence refuses (another member stored past it) is left
// alone with its partitions: nothing more of them is written or committed
// here, and they are fetched again from the database's offsets. If this
// member lost a partition, the rebalance it has not seen yet takes it away;
// if it still owns it, it goes on from where the database says.
func (c *Consumer) process(ctx context.Context, cl *kgo.Client, recs, markers []*kgo.Record) error {
	if len(recs) == 0 {
		c.commits.add(markers)
		return nil
	}
	scope, err := c.offsetScope(ctx)
	if err != nil {
		return err
	}
	runs := byPartition(recs)
	if len(recs) <= c.cfg.BatchSize {
		runs = [][]*kgo.Record{recs}
	}
	written := make([]int, len(runs)) // records of each run stored
	fenced := make([]bool, len(runs))
	writeRun := func(ctx context.Context, i int) error {
		run := runs[i]
		for written[i] < len(run) {
			part := run[written[i]:]
			n := min(len(part), c.cfg.BatchSize)
			err := c.writePrepared(ctx, c.prepare(scope, part[:n]))
			if errors.Is(err, store.ErrStaleOffsets) {
				c.log.Warn("partition fenced: another member stored past this batch; not writing it",
					slog.Int("partition", int(part[0].Partition)), slog.Int64("from", part[0].Offset), slog.Any("err", err))
				c.cfg.Metrics.Fenced.Inc()
				fenced[i] = true
				return nil
			}
			if err != nil {
				return err
			}
			written[i] += n
		}
		return nil
	}
	if len(runs) == 1 {
		// One run (every small poll) is written here, on the polling
		// goroutine: a goroutine of its own would cost a hand-off between
		// threads, and a wake-up, for every batch.
		if err := writeRun(ctx, 0); err != nil {
			return err
		}
	} else {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(c.cfg.Writers)
		for i := range runs {
			g.Go(func() error { return writeRun(gctx, i) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	if err := c.refetchFenced(ctx, cl, scope, runs, fenced); err != nil {
		return err
	}

	// Only now, with the orders safe in PostgreSQL, may Kafka be told they
	// are done; it is told within commitEvery (commit.go). If that commit
	// fails or never comes, the orders come again and are skipped thanks to
	// the offsets stored with them, or recognised as duplicates.
	var commit []*kgo.Record
	for i, run := range runs {
		if !fenced[i] {
			commit = append(commit, run[:written[i]]...)
		}
	}
	c.commits.add(append(commit, markersPast(markers, recs, commit)...))
	return nil
}

// splitMarkers parts a poll's records into the data records and the
// transaction markers (control records) among them.
func splitMarkers(all []*kgo.Record) (recs, markers []*kgo.Record) {
	for _, r := range all {
		if r.Attrs.IsControl() {
			markers = append(markers, r)
		} else {
			recs = append(recs, r)
		}
	}
	if len(markers) == 0 {
		return all, nil
	}
	return recs, markers
}

// markersPast returns the markers that may be committed past: those whose
// partition's last data record before them in this poll (recs) was stored
// (is in commit), or that have none before them. A marker behind a fenced
// batch is not: that batch is fetched again, and the marker with it.
func markersPast(markers, recs, commit []*kgo.Record) []*kgo.Record {
	if len(markers) == 0 {
		return nil
	}
	stored := make(map[*kgo.Record]bool, len(commit))
	for _, r := range commit {
		stored[r] = true
	}
	// The poll's data records of each partition, in offset order: a marker's
	// record before it is found by a search, not a scan of the whole poll
	// (a drained transactional topic brings thousands of records and a
	// marker every few).
	byPart := map[int32][]*kgo.Record{}
	for _, r := range recs {
		byPart[r.Partition] = append(byPart[r.Partition], r)
	}
	for _, rs := range byPart {
		slices.SortFunc(rs, func(a, b *kgo.Record) int { return cmp.Compare(a.Offset, b.Offset) })
	}
	var out []*kgo.Record
	for _, m := range markers {
		rs := byPart[m.Partition]
		i, _ := slices.BinarySearchFunc(rs, m.Offset, func(r *kgo.Record, o int64) int { return cmp.Compare(r.Offset, o) })
		if i == 0 || stored[rs[i-1]] {
			out = append(out, m)
		}
	}
	return out
}

// signCommit names this member in the metadata of each offset it commits
// (instead of franz-go's default, the member id the coordinator made up).
// During a rebalance the coordinator reports no assignment, so the last
// committer is what `foodpipe status` can honestly show as a partition's
// last known owner.
func (c *Consumer) signCommit(ctx context.Context) context.Context {
	name := cmp.Or(c.cfg.ClientID, c.cfg.ID)
	return kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			for j := range req.Topics[i].Partitions {
				req.Topics[i].Partitions[j].Metadata = &name
			}
		}
		return nil
	})
}

// refetchFenced moves the fetch position of each partition of a fenced run
// to the offset the database holds (or, for a partition of the run that
// another member did not store past, back to where the run began), so that
// nothing past this poll is skipped nor fetched twice. It runs on the
// polling goroutine, before AllowRebalance, as SetOffsets requires.
func (c *Consumer) refetchFenced(ctx context.Context, cl *kgo.Client, scope string, runs [][]*kgo.Record, fenced []bool) error {
	if !slices.Contains(fenced, true) {
		return nil
	}
	stored, err := c.store.Offsets(ctx, c.cfg.Group, scope)
	if err != nil {
		return fmt.Errorf("read stored offsets: %w", err)
	}
	set := map[int32]kgo.EpochOffset{}
	for i, run := range runs {
		if fenced[i] {
			for _, r := range run {
				if _, seen := set[r.Partition]; !seen {
					set[r.Partition] = kgo.EpochOffset{Epoch: -1, Offset: max(stored[r.Partition], r.Offset)}
					c.posMu.Lock()
					c.next[r.Partition] = set[r.Partition].Offset
					c.posMu.Unlock()
				}
			}
		}
	}
	cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{c.cfg.Topic: set})
	return nil
}

func byPartition(recs []*kgo.Record) [][]*kgo.Record {
	idx := map[int32]int{}
	var out [][]*kgo.Record
	for _, r := range recs {
		i, ok := idx[r.Partition]
		if !ok {
			i = len(out)
			idx[r.Partition] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], r)
	}
	return out
}

// prepare decodes and validates records into a batch and its dead letters.
func (c *Consumer) prepare(scope string, recs []*kgo.Record) prepared {
	p := prepared{recs: recs, batch: store.Batch{Group: c.cfg.Group, Rows: make([]store.Row, 0, len(recs))}}
	offsets := map[int32]*store.PartitionOffset{}
	var parts []int32
	for _, r := range recs {
		po := offsets[r.Partition]
		if po == nil {
			po = &store.PartitionOffset{Topic: scope, Partition: r.Partition, From: r.Offset}
			offsets[r.Partition] = po
			parts = append(parts, r.Partition)
		}
		po.Next = r.Offset + 1
		o, err := order.Decode(r.Value)
		if err != nil {
			p.batch.Dead = append(p.batch.Dead, deadLetterOf(scope, r, string(order.ReasonOf(err)), err))
			continue
		}
		p.batch.Rows = append(p.batch.Rows, store.Row{Order: o, Partition: r.Partition, Offset: r.Offset, Sent: r.Timestamp})
	}
	for _, part := range parts {
		p.batch.Offsets = append(p.batch.Offsets, *offsets[part])
	}
	p.batch.Expired = c.expiredOf(&p.batch)
	p.batch.SetAside = func(row store.Row, err error) store.DeadLetter {
		reason := dlq.ReasonRejected
		switch {
		case errors.Is(err, store.ErrConflict):
			reason = dlq.ReasonConflict
		case errors.Is(err, store.ErrRefused):
			reason = dlq.ReasonRefused
		}
		return deadLetterOf(scope, recordOf(recs, row), reason, err)
	}
	return p
}

// writePrepared writes one prepared batch. Its dead letters are recorded in
// the same transaction, so they are durable before the offsets that cover
// them are stored, and are published to the dead-letter topic afterwards.
func (c *Consumer) writePrepared(ctx context.Context, p prepared) error {
	batch := &p.batch
	res, err := c.write(ctx, batch)
	if err != nil {
		return err
	}
	if res.DeadLetters > 0 {
		// A crash here, after the commit and before the publish, must not
		// lose a dead letter: the next consumer of the group publishes it.
		fault.Crash("consumer.dead-letters-recorded")
		c.deadRecorded(batch, res)
	}
	for i, r := range res.Duplicates {
		if i == namedDuplicates {
			// A replay can bring a whole batch of them: the metric counts
			// them all, the log names the first few.
			c.log.Info("more duplicate orders skipped", slog.Int("count", len(res.Duplicates)-i))
			break
		}
		c.log.Info("duplicate order skipped", telemetry.OrderID(r.Order.OrderID),
			slog.Int("partition", int(r.Partition)), slog.Int64("offset", r.Offset))
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		for _, r := range batch.Rows {
			c.log.Debug("order processed", telemetry.OrderID(r.Order.OrderID),
				slog.Int("partition", int(r.Partition)), slog.Int64("offset", r.Offset))
		}
	}
	c.stored(batch)
	c.processed.Add(int64(res.Inserted))
	c.duplicates.Add(int64(len(res.Duplicates)))
	// What the batch set aside: dead letters, in a store that records them;
	// skipped, in the analytics store, which records none (the orders group
	// dead-letters the same messages).
	c.invalid.Add(int64(len(batch.Dead) + len(res.Conflicts) + len(res.Rejected)))
	c.batches.Add(1)
	c.recordStored(batch, res)
	return nil
}

// write stores the batch, retrying transient failures with backoff and
// waiting out an open circuit breaker: it returns only when the batch is
// stored, the shutdown budget is spent, or the error is not transient.
func (c *Consumer) write(ctx context.Context, b *store.Batch) (store.Result, error) {
	wait, schemaWait := newBackoff(), newSchemaBackoff()
	var failingSince time.Time
	defer c.batchDone(b)
	for attempt := 1; ; attempt++ {
		start := time.Now()
		res, err := c.breaker.Execute(func() (store.Result, error) {
			// A database that stops answering (a dropped network, not a
			// refused connection) must not hang the write for ever.
			actx, cancel := context.WithTimeout(ctx, writeTimeout)
			defer cancel()
			res, err := c.store.WriteBatch(actx, *b)
			if store.IsTransient(err) {
				c.batchFailed(b) // before the breaker asks ReadyToTrip
			}
			return res, err
		})
		if err == nil {
			took := time.Since(start)
			c.lastBatch.Store(int64(took))
			c.cfg.Metrics.DBBatchSeconds.Observe(took.Seconds())
			c.setSchemaError(nil)
			return res, nil
		}
		switch {
		case errors.Is(err, store.ErrStaleOffsets):
			// Another member stored past this batch: it owns the partition
			// now, or owned it after this member last read the stored offset.
			return store.Result{}, err
		case store.IsSchema(err):
			// Pause, holding the batch, until a person fixes the schema or
			// the grants: exiting would stop the pipeline just the same,
			// and every restart would meet the same error.
			c.failures.Add(1)
			c.setSchemaError(err)
			select {
			case <-time.After(schemaWait.NextBackOff()):
			case <-ctx.Done():
				return store.Result{}, fmt.Errorf("write batch: gave up at shutdown, offsets not committed: %w", err)
			}
			continue
		case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		case store.IsTransient(err):
			c.failures.Add(1)
			c.log.Warn("database write failed, retrying", slog.Int("attempt", attempt), slog.Any("err", err))
		default:
			c.failures.Add(1)
			return store.Result{}, err
		}
		if failingSince.IsZero() {
			failingSince = start
		} else if time.Since(failingSince) >= AwayAfter {
			return store.Result{}, fmt.Errorf("%w: %w", errDatabaseAway, err)
		}
		pause := wait.NextBackOff()
		if left := AwayAfter - time.Since(failingSince); left < pause {
			pause = max(left, 0) // the last attempt runs at the deadline
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return store.Result{}, fmt.Errorf("write batch: gave up at shutdown, offsets not committed: %w", err)
		}
	}
}

// recordStored updates the metrics for a stored batch and reports it. Only
// newly stored orders count towards latency: a re-delivered one is as old
// as the outage that caused its re-delivery.
func (c *Consumer) recordStored(b *store.Batch, res store.Result) {
	m := c.cfg.Metrics
	m.OrdersProcessed.Add(float64(res.Inserted))
	m.OrdersDuplicate.Add(float64(len(res.Duplicates)))
	var skipped map[[2]int64]bool // nil, and never looked into, for a batch all stored
	if n := len(res.Duplicates) + len(res.Conflicts) + len(res.Rejected); n > 0 {
		skipped = make(map[[2]int64]bool, n)
		for _, r := range res.Duplicates {
			skipped[[2]int64{int64(r.Partition), r.Offset}] = true
		}
		for _, r := range res.Conflicts {
			skipped[[2]int64{int64(r.Partition), r.Offset}] = true
		}
		for _, r := range res.Rejected {
			skipped[[2]int64{int64(r.Row.Partition), r.Row.Offset}] = true
		}
	}
	now := time.Now()
	for _, r := range b.Rows {
		if !skipped[[2]int64{int64(r.Partition), r.Offset}] {
			m.E2ELatency.Observe(now.Sub(r.Order.CreatedAt).Seconds())
			m.DeliveryLatency.Observe(now.Sub(r.Sent).Seconds())
		}
	}
	if c.cfg.Observe != nil {
		c.observeStored(b, res, skipped, now)
	}
}

// observeStored tells the observer of a stored batch, one event per
// partition (a small poll's batch covers several; see process).
func (c *Consumer) observeStored(b *store.Batch, res store.Result, skipped map[[2]int64]bool, now time.Time) {
	events := make(map[int32]*BatchStored, len(b.Offsets))
	for _, po := range b.Offsets {
		events[po.Partition] = &BatchStored{Member: c.cfg.ID, At: now, Partition: po.Partition}
	}
	for _, r := range b.Rows {
		if !skipped[[2]int64{int64(r.Partition), r.Offset}] {
			events[r.Partition].Inserted++
		}
	}
	for _, r := range res.Duplicates {
		events[r.Partition].Duplicates++
	}
	for _, d := range b.Dead {
		events[d.Partition].DeadLetters++
	}
	for _, r := range res.Conflicts {
		events[r.Partition].DeadLetters++
	}
	for _, r := range res.Rejected {
		events[r.Row.Partition].DeadLetters++
	}
	for _, po := range b.Offsets {
		c.observe(*events[po.Partition])
	}
}

// recordLag sets each fetched partition's lag: the records behind its last
// stable offset once this fetch is processed. A read_committed consumer
// reads up to the last stable offset, not the high watermark: what lies
// between them belongs to a transaction still open, and is not yet there to
// read.
func (c *Consumer) recordLag(fetches kgo.Fetches) {
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		end := p.LastStableOffset
		if end < 0 {
			end = p.HighWatermark
		}
		if n := len(p.Records); n > 0 && end >= 0 {
			lag := end - (p.Records[n-1].Offset + 1)
			c.cfg.Metrics.ConsumerLag.WithLabelValues(telemetry.Partition(p.Partition)).Set(float64(max(lag, 0)))
		}
	})
}

func recordOf(recs []*kgo.Record, row store.Row) *kgo.Record {
	for _, r := range recs {
		if r.Partition == row.Partition && r.Offset == row.Offset {
			return r
		}
	}
	return &kgo.Record{Topic: "", Partition: row.Partition, Offset: row.Offset}
}
