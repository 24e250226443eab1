package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// MinuteRevenue is one minute of a group's aggregates.
type MinuteRevenue struct {
	Minute  time.Time `json:"minute"`
	Orders  int64     `json:"orders"`
	Revenue string    `json:"revenue"` // exact, as NUMERIC prints it
}

// ItemSales is one menu item's sales.
type ItemSales struct {
	Item     string `json:"item"`
	Quantity int64  `json:"quantity"`
	Revenue  string `json:"revenue"`
}

// CustomerSpend is one customer's orders.
type CustomerSpend struct {
	CustomerID  string    `json:"customer_id"`
	Orders      int64     `json:"orders"`
	Spent       string    `json:"spent"`
	LastOrderAt time.Time `json:"last_order_at"`
}

// AnalyticsReport is what `foodpipe analytics report` shows.
type AnalyticsReport struct {
	Group        string          `json:"group"`
	Since        time.Time       `json:"since"`
	Minutes      []MinuteRevenue `json:"minutes"`
	TopItems     []ItemSales     `json:"top_items"`
	TopCustomers []CustomerSpend `json:"top_customers"`
}

// Report reads group's revenue per minute since since, and its top items and
// customers of all time by revenue. (The ORDER BY names the tables' NUMERIC
// columns: the bare names would sort the text the SELECT makes of them.)
func (a *Analytics) Report(ctx context.Context, group string, since time.Time, top int) (AnalyticsReport, error) {
	r := AnalyticsReport{Group: group, Since: since}
	var err error
	if r.Minutes, err = collect(ctx, a.s, "analytics report", `SELECT minute, orders, revenue::text FROM analytics_minute
		WHERE group_id = $1 AND minute >= date_trunc('minute', $2::timestamptz) ORDER BY minute`,
		pgx.RowToStructByPos[MinuteRevenue], group, since); err != nil {
		return r, err
	}
	if r.TopItems, err = collect(ctx, a.s, "analytics report", `SELECT item, quantity, revenue::text FROM analytics_item_total
		WHERE group_id = $1 ORDER BY analytics_item_total.revenue DESC, item LIMIT $2`, pgx.RowToStructByPos[ItemSales], group, top); err != nil {
		return r, err
	}
	r.TopCustomers, err = collect(ctx, a.s, "analytics report", `SELECT customer_id, orders, spent::text, last_order_at FROM analytics_customer
		WHERE group_id = $1 ORDER BY analytics_customer.spent DESC, customer_id LIMIT $2`, pgx.RowToStructByPos[CustomerSpend], group, top)
	return r, err
}

// collect runs sql and makes each row a T with fn; errors say label.
func collect[T any](ctx context.Context, s *Store, label, sql string, fn pgx.RowToFunc[T], args ...any) ([]T, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	out, err := pgx.CollectRows(rows, fn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	return out, nil
}

// differences computes each aggregate again from the orders table, over the
// orders the group has counted (analytics_orders_seen), and lists where the two
// differ, to the cent: an order counted that the table does not hold, and
// each key whose aggregate is not the sum of those orders. An order the
// table holds with other content than the group counted shows as the keys
// it changes. Orders the group has not counted are left out: they are its
// lag, or were stored before the group began (an earlier run's, in a shared
// database). Item names are keyed in NFC, as the aggregation keys them
// (increments.order); PostgreSQL's normalize needs a UTF8 database, and in
// another encoding names are compared as the orders table holds them.
const differences = `WITH counted AS (
	SELECT o.* FROM analytics_orders_seen s JOIN orders o ON o.order_id = s.order_id WHERE s.group_id = $1
), o_minute AS (
	SELECT date_trunc('minute', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS minute, count(*) AS orders, sum(total_amount) AS revenue
	FROM counted GROUP BY 1
), o_item AS (
	SELECT date_trunc('minute', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS minute,
		CASE WHEN current_setting('server_encoding') = 'UTF8' THEN normalize(it->>'name', NFC) ELSE it->>'name' END AS item,
		sum((it->>'quantity')::bigint) AS quantity, sum((it->>'quantity')::bigint * (it->>'price')::numeric) AS revenue
	FROM counted, jsonb_array_elements(items) AS it GROUP BY 1, 2
), o_customer AS (
	SELECT customer_id, count(*) AS orders, sum(total_amount) AS spent, max(created_at) AS last_order_at
	FROM counted GROUP BY 1
)
SELECT 'order ' || s.order_id || ': counted, not in the orders table'
FROM analytics_orders_seen s
WHERE s.group_id = $1 AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = s.order_id)
UNION ALL
SELECT 'minute ' || coalesce(o.minute, a.minute)::text || ': orders ' || coalesce(o.orders::text, '-') || ' revenue ' || coalesce(o.revenue::text, '-')
	|| ', counted ' || coalesce(a.orders::text, '-') || ' revenue ' || coalesce(a.revenue::text, '-')
FROM o_minute o FULL JOIN (SELECT * FROM analytics_minute WHERE group_id = $1) a ON a.minute = o.minute
WHERE o.orders IS DISTINCT FROM a.orders OR o.revenue IS DISTINCT FROM a.revenue
UNION ALL
SELECT 'item ' || coalesce(o.item, a.item) || ' at ' || coalesce(o.minute, a.minute)::text || ': quantity ' || coalesce(o.quantity::text, '-')
	|| ' revenue ' || coalesce(o.revenue::text, '-') || ', counted ' || coalesce(a.quantity::text, '-') || ' revenue ' || coalesce(a.revenue::text, '-')
FROM o_item o FULL JOIN (SELECT * FROM analytics_item_minute WHERE group_id = $1) a ON a.minute = o.minute AND a.item = o.item
WHERE o.quantity IS DISTINCT FROM a.quantity OR o.revenue IS DISTINCT FROM a.revenue
UNION ALL
SELECT 'customer ' || coalesce(o.customer_id, a.customer_id) || ': orders ' || coalesce(o.orders::text, '-') || ' spent ' || coalesce(o.spent::text, '-')
	|| ', counted ' || coalesce(a.orders::text, '-') || ' spent ' || coalesce(a.spent::text, '-')
FROM o_customer o FULL JOIN (SELECT * FROM analytics_customer WHERE group_id = $1) a ON a.customer_id = o.customer_id
WHERE o.orders IS DISTINCT FROM a.orders OR o.spent IS DISTINCT FROM a.spent OR o.last_order_at IS DISTINCT FROM a.last_order_at
LIMIT 100`

// checkCounts are how many orders group has counted, and how many the table
// holds that it has not.
const checkCounts = `SELECT (SELECT count(*) FROM analytics_orders_seen WHERE group_id = $1),
	(SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM analytics_orders_seen s WHERE s.group_id = $1 AND s.order_id = o.order_id))`

// AnalyticsCheck is what Check found for a group.
type AnalyticsCheck struct {
	Group string `json:"group"`
	// Checked is how many orders the group has counted: its aggregates are
	// held against theirs in the orders table.
	Checked int64 `json:"checked"`
	// NotCounted is how many orders the table holds that the group has not
	// counted: its lag, or orders stored before it began. Not a difference.
	NotCounted int64 `json:"not_counted"`
	// Differences lists, up to 100, where the aggregates differ from the
	// counted orders in the table; none when each was counted exactly once.
	Differences []string `json:"differences"`
}

// Check holds group's aggregates against the orders it counted, as the
// orders table has them, to the cent. It reads in one snapshot, so it may run
// while both groups write; an order the group counted that the orders group
// has not stored yet is a difference until it has, so run it when both
// groups have caught up.
func (a *Analytics) Check(ctx context.Context, group string) (AnalyticsCheck, error) {
	c := AnalyticsCheck{Group: group}
	tx, err := a.s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return c, fmt.Errorf("compare analytics with orders: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only: nothing to keep or undo
	if err := tx.QueryRow(ctx, checkCounts, group).Scan(&c.Checked, &c.NotCounted); err != nil {
		return c, fmt.Errorf("compare analytics with orders: %w", err)
	}
	rows, err := tx.Query(ctx, differences, group)
	if err != nil {
		return c, fmt.Errorf("compare analytics with orders: %w", err)
	}
	if c.Differences, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return c, fmt.Errorf("compare analytics with orders: %w", err)
	}
	return c, nil
}

// Uncounted is how many of the orders ids group has not counted yet.
func (a *Analytics) Uncounted(ctx context.Context, group string, ids []string) (int64, error) {
	var n int64
	err := a.s.pool.QueryRow(ctx, `SELECT count(*) FROM unnest($2::text[]) AS id
		WHERE NOT EXISTS (SELECT 1 FROM analytics_orders_seen s WHERE s.group_id = $1 AND s.order_id = id)`, group, ids).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count analytics orders: %w", err)
	}
	return n, nil
}

// Counted is how many orders group has counted. Each counted order adds
// one to its minute's count, so the per-minute table answers with a row a
// minute rather than a scan of every order id (the lab asks every second).
func (a *Analytics) Counted(ctx context.Context, group string) (int64, error) {
	var n int64
	if err := a.s.pool.QueryRow(ctx, `SELECT coalesce(sum(orders), 0)::bigint FROM analytics_minute WHERE group_id = $1`, group).Scan(&n); err != nil {
		return 0, fmt.Errorf("count analytics orders: %w", err)
	}
	return n, nil
}
