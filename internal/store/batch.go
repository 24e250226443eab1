package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"foodpipe/internal/fault"
	"foodpipe/internal/order"
)

// Row is one order to store, with the Kafka position it was read from.
type Row struct {
	Order     order.Order
	Partition int32
	Offset    int64
	// Sent is the record's Kafka timestamp: when its producer handed it
	// to Kafka (or, on a topic that keeps append times, when the broker
	// wrote it).
	Sent time.Time
}

// PartitionOffset is the stretch of one partition a batch covers.
type PartitionOffset struct {
	Topic     string
	Partition int32
	From      int64 // first offset of this batch in the partition
	Next      int64 // offset to resume from after this batch
}

// Batch is what the consumer stores in one transaction: the orders of one
// poll and, for the consumer group, the offsets that poll covered.
type Batch struct {
	Group   string
	Rows    []Row
	Offsets []PartitionOffset
	// Dead are messages the caller set aside before the write (invalid
	// ones); they are recorded with the batch.
	Dead []DeadLetter
	// SetAside describes, as a dead letter, a row the write refused: a
	// conflicting duplicate (err wraps ErrConflict) or a row PostgreSQL
	// rejected (err wraps ErrRejected). It is called inside the transaction,
	// which records what it returns. Nil records nothing for such rows.
	SetAside func(r Row, err error) DeadLetter
	// Expired are stretches of the batch's partitions that Kafka deleted
	// before the group read them. They are recorded (expired_offsets) with
	// the offsets that move past them, so the loss stays on record.
	Expired []ExpiredRange
}

// ExpiredRange is a stretch of a partition, From to To inclusive, whose
// messages Kafka deleted before a group read them.
type ExpiredRange struct {
	Topic     string
	Partition int32
	From, To  int64
}

// Count is how many offsets the range covers.
func (r ExpiredRange) Count() int64 { return r.To - r.From + 1 }

// Rejected is a row PostgreSQL itself refused (a data exception). Err (which
// wraps ErrRejected) is the reason to record with the dead letter.
type Rejected struct {
	Row Row
	Err error
}

// Result says what became of each row of a batch. Every row lands in exactly
// one of: inserted (counted), Duplicates, Conflicts, Rejected.
type Result struct {
	Inserted int
	// Duplicates are rows whose order_id was already stored with identical
	// content (an exact re-delivery), or repeated identically inside the batch.
	Duplicates []Row
	// Conflicts are rows whose order_id was already stored, or came earlier
	// in the batch, with different content. The stored row is never changed.
	Conflicts []Row
	Rejected  []Rejected
	// DeadLetters is how many dead letters the transaction recorded: the
	// batch's Dead and one per conflict and rejected row when SetAside is set.
	DeadLetters int
	// DeadSkipped says the batch's Dead were not recorded: a store of
	// another group than the orders' (the notifier's) leaves the messages
	// that are not orders to the orders group.
	DeadSkipped bool
}

// orderColumns are the columns a batch fills, in the order of a COPY row.
const orderColumns = "order_id, customer_id, items, total_amount, status, created_at, kafka_partition, kafka_offset"

// copyOrders loads a batch straight into orders: the cheapest way in, and
// all a batch of new orders needs. An order_id stored already fails it.
const copyOrders = "COPY orders (" + orderColumns + ") FROM STDIN BINARY"

// The staging table is the way in for batches that meet stored orders or
// refused rows: COPY into it, then one INSERT ... SELECT ... ON CONFLICT
// moves what is new into orders. It is temporary (no WAL, nothing shared
// with other sessions), created once per connection, and emptied at every
// commit of a transaction that used it. Its columns take the same binary
// rows as orders but are unconstrained, so that it can exist before the
// migrations have run, and so that bad values fail in the INSERT, where
// savepoints can isolate them.
const (
	createStaging = `CREATE TEMPORARY TABLE IF NOT EXISTS order_staging (
	order_id        text,
	customer_id     text,
	items           jsonb,
	total_amount    numeric,
	status          text,
	created_at      timestamptz,
	kafka_partition int,
	kafka_offset    bigint
) ON COMMIT DELETE ROWS`

	copyStaging = "COPY order_staging (" + orderColumns + ") FROM STDIN BINARY"

	// insertStaged moves the staged rows into orders and returns the
	// order_ids it left out because they were stored already.
	insertStaged = `WITH ins AS (
	INSERT INTO orders (` + orderColumns + `)
	SELECT ` + orderColumns + ` FROM order_staging
	ON CONFLICT (order_id) DO NOTHING
	RETURNING order_id
)
SELECT s.order_id FROM order_staging s
WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.order_id = s.order_id)`

	// compareStaged tells, for staged rows left out, whether the stored
	// order has the same content. It is a statement of its own so that it
	// also sees rows committed by concurrent transactions that the INSERT
	// waited for.
	compareStaged = `SELECT s.order_id,
	o.customer_id = s.customer_id AND o.items = s.items AND o.total_amount = s.total_amount
		AND o.status = s.status AND o.created_at = s.created_at
FROM order_staging s JOIN orders o ON o.order_id = s.order_id
WHERE s.order_id = ANY($1)`

	clearStaging = "DELETE FROM order_staging"
)

// probeOrders returns which of the order_ids given as an array are stored
// already. The array meets orders through its primary key, one index lookup
// per id.
// insertOrders stores new orders sent as arrays, one per column: for a
// small batch, the COPY's work in a statement that travels with the BEGIN
// and the fence (see inlineRows). Like the COPY, it fails on an order_id
// stored already (23505), and the batch is done again in probe mode.
const insertOrders = `INSERT INTO orders (` + orderColumns + `)
SELECT order_id, customer_id, items::jsonb, cents / 100.0, status, created_at, kafka_partition, kafka_offset
FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::timestamptz[], $7::int[], $8::int8[])
	AS p(order_id, customer_id, items, cents, status, created_at, kafka_partition, kafka_offset)`

const probeOrders = `SELECT p.order_id FROM unnest($1::text[]) AS p(order_id)
JOIN orders o ON o.order_id = p.order_id`

// compareOrders tells, for stored orders, whether the batch brings the same
// content. The rows travel as arrays, one per column.
const compareOrders = `SELECT p.order_id,
	o.customer_id = p.customer_id AND o.items = p.items::jsonb AND o.total_amount = p.cents / 100.0
		AND o.status = p.status AND o.created_at = p.created_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::timestamptz[])
	AS p(order_id, customer_id, items, cents, status, created_at)
JOIN orders o ON o.order_id = p.order_id`

// PostgreSQL's timestamptz range: from 4714-11-24 BC (astronomical year
// -4713) up to, not including, 294277-01-01. Instants outside it are refused
// before they are sent: they travel as int64 microseconds since 2000, and far
// enough out that count overflows into some other, valid-looking date.
var (
	minTimestamptz = time.Date(-4713, time.November, 24, 0, 0, 0, 0, time.UTC)
	maxTimestamptz = time.Date(294277, time.January, 1, 0, 0, 0, 0, time.UTC)
)

// fate is what became of one row of a batch.
type fate uint8

const (
	inserted fate = iota
	duplicate
	conflict
	rejected
)

// batchWrite is the state of one WriteBatch call: the rows, the in-batch
// deduplication, and the fate of every row.
type batchWrite struct {
	b      *Batch
	unique []int          // indexes into b.Rows of first occurrences to store
	first  map[string]int // order_id -> index of its first occurrence
	fates  []fate
	errs   map[int]error // reasons of rejected rows, by index

	existing   int    // rows found already stored (any mode but fast)
	afterProbe func() // Store.afterProbe
	dead       int    // dead letters recorded
}

// WriteBatch stores a batch in one transaction: the new orders, and for
// every PartitionOffset the next offset of the batch's consumer group.
//
// Orders are deduplicated by order_id, inside the batch too (the first
// occurrence wins): a stored order is never overwritten, and a row with the
// id of a stored one is reported as a duplicate when customer_id, items,
// total_amount, status and created_at all match and as a conflict otherwise.
//
// If a partition's stored next offset lies beyond its PartitionOffset.From,
// another consumer stored past this point: nothing is written and the error
// wraps ErrStaleOffsets.
//
// A row PostgreSQL refuses (a data exception) does not fail the batch: it is
// found by bisection, reported in Result.Rejected, and the rest is stored.
// Any other error rolls everything back; IsTransient says whether to retry.
func (s *Store) WriteBatch(ctx context.Context, b Batch) (Result, error) {
	if err := b.validate(); err != nil {
		return Result{}, err
	}
	if len(b.Rows) == 0 && len(b.Offsets) == 0 && len(b.Dead) == 0 {
		return Result{}, nil
	}
	w := newBatchWrite(&b)
	w.afterProbe = s.afterProbe
	m := fast
	if s.recentExisting.Load() {
		m = probe
	}
	err := s.writeTx(ctx, w, m)
	if m == fast && isExistingOrder(err) {
		// Some order is stored already; do it again, skipping those.
		s.recentExisting.Store(true)
		m = probe
		w.reset()
		err = s.writeTx(ctx, w, m)
	}
	if isDataException(err) {
		// Some row is refused and the transaction is lost. Do it again,
		// this time with a savepoint around every attempt, to find the row.
		// (A 23505 here is an order another transaction stored between the
		// probe and the COPY; ON CONFLICT in careful mode settles it.)
		m = careful
		w.reset()
		err = s.writeTx(ctx, w, m)
	}
	if err != nil {
		s.resetIfReadOnly(err)
		return Result{}, fmt.Errorf("write batch: %w", err)
	}
	if m != fast {
		// Re-deliveries come in runs (a producer re-sending a stretch of
		// orders): keep probing until a batch finds nothing stored.
		s.recentExisting.Store(w.existing > 0)
	}
	return w.result(), nil
}

func (b *Batch) validate() error {
	type key struct {
		topic     string
		partition int32
	}
	seen := make(map[key]bool, len(b.Offsets))
	for _, po := range b.Offsets {
		if b.Group == "" {
			return fmt.Errorf("%w: offsets without a consumer group", ErrInvalidBatch)
		}
		if po.Next < po.From || po.From < 0 {
			return fmt.Errorf("%w: %s/%d offsets run from %d to %d", ErrInvalidBatch, po.Topic, po.Partition, po.From, po.Next)
		}
		k := key{po.Topic, po.Partition}
		if seen[k] {
			return fmt.Errorf("%w: %s/%d listed twice", ErrInvalidBatch, po.Topic, po.Partition)
		}
		seen[k] = true
	}
	return nil
}

// newBatchWrite deduplicates the rows by order_id and refuses the instants
// the binary format cannot carry.
func newBatchWrite(b *Batch) *batchWrite {
	w := &batchWrite{
		b:      b,
		unique: make([]int, 0, len(b.Rows)),
		first:  make(map[string]int, len(b.Rows)),
		fates:  make([]fate, len(b.Rows)),
	}
	for i, r := range b.Rows {
		if _, seen := w.first[r.Order.OrderID]; seen {
			continue // settled in result, once the first occurrence's fate is known
		}
		w.first[r.Order.OrderID] = i
		if at := r.Order.CreatedAt; at.Before(minTimestamptz) || !at.Before(maxTimestamptz) {
			w.reject(i, fmt.Errorf("created_at %s is outside PostgreSQL's timestamptz range", at.Format(time.RFC3339)))
			continue
		}
		w.unique = append(w.unique, i)
	}
	return w
}

// reset forgets what a failed transaction found out, keeping the rows
// refused before any transaction began.
func (w *batchWrite) reset() {
	w.existing, w.dead = 0, 0
	for _, i := range w.unique {
		w.fates[i] = inserted
		delete(w.errs, i)
	}
}

func (w *batchWrite) reject(i int, err error) {
	if w.errs == nil {
		w.errs = map[int]error{}
	}
	w.fates[i] = rejected
	w.errs[i] = fmt.Errorf("%w: order %s: %w", ErrRejected, w.b.Rows[i].Order.OrderID, err)
}

// result settles in-batch repeats by their first occurrence and lists every
// row's fate in batch order.
func (w *batchWrite) result() Result {
	var res Result
	for i, r := range w.b.Rows {
		f := w.fates[i]
		err := w.errs[i]
		if first := w.first[r.Order.OrderID]; first != i {
			// An identical repeat shares the fate of the first occurrence,
			// except that it is never inserted a second time.
			f, err = conflict, nil
			if sameOrder(r.Order, w.b.Rows[first].Order) {
				f, err = w.fates[first], w.errs[first]
				if f == inserted {
					f = duplicate
				}
			}
		}
		switch f {
		case inserted:
			res.Inserted++
		case duplicate:
			res.Duplicates = append(res.Duplicates, r)
		case conflict:
			res.Conflicts = append(res.Conflicts, r)
		case rejected:
			res.Rejected = append(res.Rejected, Rejected{Row: r, Err: err})
		}
	}
	res.DeadLetters = w.dead
	return res
}

// sameOrder compares what the database stores of two orders, at the
// microsecond precision of timestamptz.
func sameOrder(a, b order.Order) bool {
	return a.CustomerID == b.CustomerID && a.TotalAmount == b.TotalAmount && a.Status == b.Status &&
		a.CreatedAt.UnixMicro() == b.CreatedAt.UnixMicro() && bytes.Equal(a.ItemsJSON(), b.ItemsJSON())
}

// mode is how writeTx brings rows into orders.
type mode uint8

const (
	// fast copies the rows straight into orders. A stored order_id fails
	// the COPY (23505) and the batch is done again in probe mode.
	fast mode = iota
	// probe asks which orders are stored already (and whether with the same
	// content), then copies the others straight into orders. An order
	// stored by a concurrent transaction in between fails the COPY, and the
	// batch is done again in careful mode.
	probe
	// careful goes through the staging table and ON CONFLICT DO NOTHING,
	// which settles orders that concurrent transactions store at the same
	// time, and sorts the rows left out into duplicates and conflicts. Each
	// attempt is in a savepoint, bisecting to isolate the rows PostgreSQL
	// refuses.
	careful
)

// inlineRows is the most rows of a batch of new orders that travel as
// arrays in the transaction's first round trip (insertOrders) rather than by
// a COPY of their own. A COPY costs two round trips more (its start, then
// its data) and a goroutine; it pays for itself only on batches of
// hundreds, where PostgreSQL's work per row decides (a drain writes
// thousands at a time, a topic followed at a few orders a second one or a
// few).
const inlineRows = 64

// writeTx runs the batch's transaction in mode m.
func (s *Store) writeTx(ctx context.Context, w *batchWrite, m mode) error {
	fault.Freeze("store.before-transaction")
	inline := m == fast && len(w.unique) > 0 && len(w.unique) <= inlineRows
	var queue func(*pgx.Batch) string
	if inline {
		queue = func(b *pgx.Batch) string {
			b.Queue(insertOrders, w.insertArgs(w.unique)...)
			return "insert orders"
		}
	}
	// A batch of new orders that sets nothing aside and records no expired
	// stretch needs nothing after its rows: its COMMIT travels with them,
	// and it is stored in one round trip. (Not while a test freezes the
	// writer inside its transaction: there would be no inside to freeze in.)
	commit := inline && len(w.unique) == len(w.b.Rows) && len(w.b.Dead) == 0 && len(w.b.Expired) == 0 &&
		!fault.Armed("store.after-offsets", "store.after-rows")
	tx, end, err := s.begin(ctx, w, queue, commit)
	if err != nil {
		return err
	}
	defer end()
	if commit {
		return nil
	}
	fault.Freeze("store.after-offsets")
	if len(w.unique) > 0 && !inline {
		if m == careful {
			// The whole batch is known to fail: start with its halves.
			mid := len(w.unique) / 2
			if err = w.bisect(ctx, tx, w.unique[:mid]); err == nil {
				err = w.bisect(ctx, tx, w.unique[mid:])
			}
		} else {
			err = w.store(ctx, tx, w.unique, m)
		}
		if err != nil {
			return err
		}
	}
	fault.Freeze("store.after-rows")
	if err := w.storeDead(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
