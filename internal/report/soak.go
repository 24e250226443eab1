package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"foodpipe/internal/measure"
)

// PrintSoak writes `foodpipe soak`'s report: the consumer after warm-up and
// at the end, side by side, and whether it stayed flat.
func PrintSoak(w io.Writer, r measure.SoakReport) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\n\tafter warm-up (%.0fs)\tat the end (%.0fs)\n", r.Start.At, r.End.At)
	fmt.Fprintf(tw, "RSS MiB\t%.1f\t%.1f\n", r.Start.RSSMiB, r.End.RSSMiB)
	fmt.Fprintf(tw, "heap MiB\t%.1f\t%.1f\n", r.Start.HeapMiB, r.End.HeapMiB)
	fmt.Fprintf(tw, "goroutines\t%d\t%d\n", r.Start.Goroutines, r.End.Goroutines)
	fmt.Fprintf(tw, "lag\t%d\t%d\n", r.Start.Lag, r.End.Lag)
	fmt.Fprintf(tw, "errors\t%d\t%d\n", r.Start.Errors, r.End.Errors)
	_ = tw.Flush() // a report that cannot be written has nowhere to say so
	fmt.Fprintf(w, "produced %d, stored %d in %.0fs: ", r.Produced, r.Stored, r.Seconds)
	if r.Flat {
		fmt.Fprintln(w, "flat")
	} else {
		fmt.Fprintln(w, "NOT flat: "+strings.Join(r.Problems, "; "))
	}
}
