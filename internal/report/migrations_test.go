package report

import (
	"strings"
	"testing"
	"time"

	"foodpipe/internal/store"
)

// `foodpipe migrate` prints the store's rows as a table: one line per
// migration with its version, its file and when it was applied (in UTC), or
// "pending".
func TestMigrationsArePrintedOneLineEach(t *testing.T) {
	at := time.Date(2025, 1, 10, 15, 30, 0, 123, time.FixedZone("CET", 3600))
	var b strings.Builder
	err := PrintMigrations(&b, []store.Migration{
		{Version: 1, File: "00001_create_orders.sql", Applied: true, AppliedAt: at},
		{Version: 2, File: "00002_create_consumer_offsets.sql", Applied: true, AppliedAt: at},
		{Version: 10, File: "00010_x.sql"},
	})
	want := "" +
		"1   00001_create_orders.sql            applied at 2025-01-10T14:30:00Z\n" +
		"2   00002_create_consumer_offsets.sql  applied at 2025-01-10T14:30:00Z\n" +
		"10  00010_x.sql                        pending\n"
	if err != nil || b.String() != want {
		t.Errorf("printed (%v):\n%s\nwant:\n%s", err, b.String(), want)
	}
}
