package report

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"foodpipe/internal/store"
)

// PrintMigrations writes one line per migration: its version, file name,
// and when it was applied or "pending".
func PrintMigrations(w io.Writer, ms []store.Migration) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, m := range ms {
		state := "pending"
		if m.Applied {
			state = "applied at " + m.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", m.Version, m.File, state)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("migrate status: %w", err)
	}
	return nil
}
