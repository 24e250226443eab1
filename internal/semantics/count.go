package semantics

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Counts is what one group's table holds of the orders produced.
type Counts struct {
	Semantics Semantics `json:"semantics"`
	Group     string    `json:"group"`
	Table     string    `json:"table"`
	// Produced are the valid orders produced, each counted in one of Lost,
	// Once and Twice.
	Produced int64 `json:"produced"`
	// Lost are produced orders with no row in the table.
	Lost int64 `json:"lost"`
	// Once are produced orders with exactly one row.
	Once int64 `json:"once"`
	// Twice are produced orders with two rows or more.
	Twice int64 `json:"twice"`
	// Rows are the table's rows of the produced orders, the doubles
	// counted each time.
	Rows int64 `json:"rows"`
}

// Querier reads; a *pgxpool.Pool is one.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Count counts, for each semantics (All), what its group's table holds of
// the orders ids: those with no row (lost), one row, two or more. group is
// the pipeline's own group, the exactly-once one. Orders other than ids
// are left out, so that a run's count is its own whatever the tables held
// before.
func Count(ctx context.Context, db Querier, group string, ids []string) ([]Counts, error) {
	out := make([]Counts, 0, len(All))
	groups := Groups(group)
	for i, s := range All {
		c := Counts{Semantics: s, Group: groups[i], Table: Table(s)}
		sql := `SELECT count(*), count(*) FILTER (WHERE n = 0), count(*) FILTER (WHERE n = 1), count(*) FILTER (WHERE n > 1), coalesce(sum(n), 0)::bigint
			FROM (SELECT DISTINCT id FROM unnest($1::text[]) AS id) AS produced,
			LATERAL (SELECT count(*) AS n FROM ` + pgx.Identifier{c.Table}.Sanitize() + ` t WHERE t.order_id = produced.id) AS stored`
		if err := db.QueryRow(ctx, sql, ids).Scan(&c.Produced, &c.Lost, &c.Once, &c.Twice, &c.Rows); err != nil {
			return nil, fmt.Errorf("count %s: %w", c.Table, err)
		}
		out = append(out, c)
	}
	return out, nil
}
