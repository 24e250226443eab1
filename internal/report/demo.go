package report

import (
	"fmt"
	"io"
	"maps"
	"slices"

	"foodpipe/internal/demo"
)

// PrintSummary writes the demo's summary: the counts, the orders per partition
// and per consumer, the latency, and what the analytics group made of them.
func PrintSummary(w io.Writer, s demo.Summary) {
	fmt.Fprintf(w, "\nsummary after %.1fs\n", s.Seconds)
	fmt.Fprintf(w, "  produced    %d\n  stored      %d\n  duplicates  %d\n  invalid     %d\n", s.Produced, s.Stored, s.Duplicates, s.Invalid)
	fmt.Fprintf(w, "  per partition:")
	for _, k := range slices.Sorted(maps.Keys(s.Partitions)) {
		fmt.Fprintf(w, "  %s=%d", k, s.Partitions[k])
	}
	fmt.Fprintf(w, "\n  per consumer: ")
	for _, k := range slices.Sorted(maps.Keys(s.Consumers)) {
		fmt.Fprintf(w, "  %s=%d", k, s.Consumers[k])
	}
	fmt.Fprintf(w, "\n  end-to-end latency  p50 %.1f ms  p99 %.1f ms  max %.1f ms\n", s.LatencyMS.P50, s.LatencyMS.P99, s.LatencyMS.Max)
	if s.Missing == 0 && s.Stored == s.Produced {
		fmt.Fprintln(w, "  every produced order is in PostgreSQL exactly once")
	}
	if n := s.Notify; n != nil {
		fmt.Fprintf(w, "  notify      %s emailed, %d refused (dead letters) by group %s, %d sent again in doubt", count(n.Sent, "order"),
			n.Refused, safe(n.Group), n.InDoubt)
		if n.Received >= 0 {
			fmt.Fprintf(w, "; %s received, %d distinct, %s at %s", count(int64(n.Received), "email"), n.Distinct,
				count(int64(n.Duplicates), "duplicate"), safe(n.Server))
		}
		fmt.Fprintln(w)
	}
	if a := s.Analytics; a != nil {
		fmt.Fprintf(w, "  analytics   %s counted by group %s", count(a.Counted, "order"), safe(a.Group))
		if len(a.Differences) == 0 && a.Counted == s.Stored {
			if a.Checked == a.Counted {
				fmt.Fprint(w, "; its aggregates equal the orders table's, to the cent")
			} else {
				fmt.Fprintf(w, "; its aggregates equal the orders table's for the %s it has counted in all, to the cent", count(a.Checked, "order"))
			}
		}
		fmt.Fprintln(w)
		for _, d := range a.Differences {
			fmt.Fprintln(w, "    differs: "+safe(d))
		}
	}
}
