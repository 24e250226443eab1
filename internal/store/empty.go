package store

import (
	"context"
	"fmt"
)

// Empty removes every row the pipeline wrote: the orders, the stored offsets
// with the stretches recorded expired, the dead letters, the analytics
// group's aggregates and the teaching groups' rows (internal/semantics).
// The schema and the record of applied migrations stay, so the database is
// as MigrateUp leaves a new one.
//
// It is for a database that belongs to the tool running on it and starts
// each run empty, as the lab's and the demo's own do (harness.Options.Fresh):
// a database a user named must never be emptied, and Empty cannot tell, so
// the caller must. Nothing in the pipeline calls it.
func (s *Store) Empty(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, "TRUNCATE orders, consumer_offsets, expired_offsets, dead_letters, analytics_orders_seen, analytics_minute, analytics_item_minute, analytics_customer, teach_at_most_once, teach_at_least_once, notifications"); err != nil {
		return fmt.Errorf("empty the tables: %w", err)
	}
	return nil
}
