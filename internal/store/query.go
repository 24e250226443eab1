package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Offsets returns the stored next offset of every partition of topic that
// group has written a batch for. The consumer resumes from these rather than
// from Kafka's committed offsets, which may lag behind the database.
func (s *Store) Offsets(ctx context.Context, group, topic string) (map[int32]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT kafka_partition, next_offset FROM consumer_offsets
		WHERE group_id = $1 AND topic = $2`, group, topic)
	if err != nil {
		return nil, fmt.Errorf("read offsets: %w", err)
	}
	out, err := collectMap[int32](rows)
	if err != nil {
		return nil, fmt.Errorf("read offsets: %w", err)
	}
	return out, nil
}

// StoredOffset is a group's next offset of one partition, as stored, with
// the topic as the consumer names it: name@topic-id, one incarnation of the
// topic (see Scope).
type StoredOffset struct {
	Topic     string
	Partition int32
	Next      int64
}

// GroupOffsets returns every next offset stored for group, of every topic
// and incarnation of a topic, by topic and partition.
func (s *Store) GroupOffsets(ctx context.Context, group string) ([]StoredOffset, error) {
	rows, err := s.pool.Query(ctx, `SELECT topic, kafka_partition, next_offset FROM consumer_offsets
		WHERE group_id = $1 ORDER BY topic, kafka_partition`, group)
	if err != nil {
		return nil, fmt.Errorf("read offsets: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[StoredOffset])
	if err != nil {
		return nil, fmt.Errorf("read offsets: %w", err)
	}
	return out, nil
}

// Expired returns the ranges of topic that group recorded as deleted by
// Kafka before it read them, by partition and offset.
func (s *Store) Expired(ctx context.Context, group, topic string) ([]ExpiredRange, error) {
	rows, err := s.pool.Query(ctx, `SELECT topic, kafka_partition, from_offset, to_offset FROM expired_offsets
		WHERE group_id = $1 AND topic = $2 ORDER BY kafka_partition, from_offset`, group, topic)
	if err != nil {
		return nil, fmt.Errorf("read expired offsets: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ExpiredRange])
	if err != nil {
		return nil, fmt.Errorf("read expired offsets: %w", err)
	}
	return out, nil
}

// CountByPartition returns how many orders were stored from each Kafka
// partition.
func (s *Store) CountByPartition(ctx context.Context) (map[int32]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT kafka_partition, count(*) FROM orders GROUP BY kafka_partition`)
	if err != nil {
		return nil, fmt.Errorf("count orders by partition: %w", err)
	}
	out, err := collectMap[int32](rows)
	if err != nil {
		return nil, fmt.Errorf("count orders by partition: %w", err)
	}
	return out, nil
}

// Count returns the number of stored orders.
func (s *Store) Count(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM orders`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count orders: %w", err)
	}
	return n, nil
}

// Latency is the distribution of processed_at - created_at, the time from an
// order's creation to its row in the database, over N orders. The durations
// are zero when N is.
type Latency struct {
	P50, P99, Max time.Duration
	N             int64
	// Batches is how many transactions stored them: processed_at is the
	// time a batch's transaction began, the same for all its rows.
	Batches int64
}

// Latency measures the end-to-end latency of the orders created at or after
// since. Percentiles are interpolated (percentile_cont).
func (s *Store) Latency(ctx context.Context, since time.Time) (Latency, error) {
	return s.latency(ctx, "created_at", since)
}

// StoredLatency measures the end-to-end latency of the orders stored at or
// after since: what a live chart shows, where an order held up by an outage
// counts when it arrives, late.
func (s *Store) StoredLatency(ctx context.Context, since time.Time) (Latency, error) {
	return s.latency(ctx, "processed_at", since)
}

// latency measures over the orders whose column (created_at or
// processed_at, never user input) is at or after since.
func (s *Store) latency(ctx context.Context, column string, since time.Time) (Latency, error) {
	var p50, p99, maxSec *float64
	var l Latency
	err := s.pool.QueryRow(ctx, `WITH lat AS (
			SELECT extract(epoch FROM processed_at - created_at)::float8 AS sec, processed_at
			FROM orders WHERE `+column+` >= $1
		)
		SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY sec),
			percentile_cont(0.99) WITHIN GROUP (ORDER BY sec),
			max(sec), count(*), count(DISTINCT processed_at)
		FROM lat`, since).Scan(&p50, &p99, &maxSec, &l.N, &l.Batches)
	if err != nil {
		return Latency{}, fmt.Errorf("measure latency: %w", err)
	}
	l.P50, l.P99, l.Max = seconds(p50), seconds(p99), seconds(maxSec)
	return l, nil
}

func seconds(s *float64) time.Duration {
	if s == nil {
		return 0
	}
	return time.Duration(*s * float64(time.Second)).Round(time.Microsecond)
}

// missingChunk bounds the ids sent in one query, so that a demo checking
// millions of orders sends a few megabytes at a time.
const missingChunk = 50_000

// MissingOrders returns, in the order given, the ids that have no stored
// order (an id given twice is reported twice). The demo uses it to prove that
// every order it produced was stored.
func (s *Store) MissingOrders(ctx context.Context, ids []string) ([]string, error) {
	var missing []string
	for start := 0; start < len(ids); start += missingChunk {
		chunk := ids[start:min(start+missingChunk, len(ids))]
		rows, err := s.pool.Query(ctx, `SELECT t.id FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n)
			WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = t.id)
			ORDER BY t.n`, chunk)
		if err != nil {
			return nil, fmt.Errorf("find missing orders: %w", err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("find missing orders: %w", err)
		}
		missing = append(missing, got...)
	}
	return missing, nil
}

// collectMap reads rows of (key, int8) into a map.
func collectMap[K comparable](rows pgx.Rows) (map[K]int64, error) {
	out := map[K]int64{}
	var k K
	var v int64
	_, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error {
		out[k] = v
		return nil
	})
	return out, err
}

// Covered returns how many messages group has stored the offsets of: the
// sum of its partitions' next offsets. For a group that started at the
// beginning of a topic, that is every message it has handled.
func (s *Store) Covered(ctx context.Context, group string) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE group_id = $1`, group).Scan(&n); err != nil {
		return 0, fmt.Errorf("read offsets: %w", err)
	}
	return n, nil
}

// ServerVersion is the PostgreSQL server's version, such as "15.8".
func (s *Store) ServerVersion(ctx context.Context) (string, error) {
	var v string
	if err := s.pool.QueryRow(ctx, `SHOW server_version`).Scan(&v); err != nil {
		return "", fmt.Errorf("server version: %w", err)
	}
	return v, nil
}
